import Raft
import Synchronization

/// Where each member of the cluster is reached, as the Raft configuration says.
///
/// The configuration lives in the log (and in snapshots): every member's addresses ride in
/// its configuration context, written when it was added. The replica loop updates this
/// directory whenever the configuration changes; the peer links, the peer listener and the
/// leader hints read it. Members without a context (a data directory from before
/// configurations carried addresses) fall back to the `--peer` flags.
public final class MemberDirectory: Sendable {
    public struct Addresses: Sendable, Equatable {
        public var peer: PeerAddress
        public var client: PeerAddress?

        public init(peer: PeerAddress, client: PeerAddress?) {
            self.peer = peer
            self.client = client
        }

        /// `PEERHOST:PORT` or `PEERHOST:PORT,CLIENTHOST:PORT`, as UTF-8: a member's context.
        public var context: [UInt8] { Array((client.map { "\(peer),\($0)" } ?? peer.description).utf8) }

        public init?(context: [UInt8]) {
            guard let text = String(validating: context, as: UTF8.self) else { return nil }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let peer = PeerAddress(String(parts[0])) else { return nil }
            var client: PeerAddress?
            if parts.count == 2 {
                guard let parsed = PeerAddress(String(parts[1])) else { return nil }
                client = parsed
            }
            self.init(peer: peer, client: client)
        }
    }

    private struct State {
        var configuration = ClusterConfiguration()
        var addresses: [NodeID: Addresses] = [:]
    }

    private let state = Mutex(State())
    /// What the flags said, for members whose configuration carries no addresses.
    private let flags: [NodeID: Addresses]

    public init(flags: [NodeID: Addresses]) {
        self.flags = flags
    }

    /// Takes a new configuration; returns the members whose addresses appeared or changed,
    /// and those no longer members.
    @discardableResult
    func update(_ configuration: ClusterConfiguration) -> (changed: [NodeID: Addresses], removed: [NodeID]) {
        state.withLock { state in
            var addresses: [NodeID: Addresses] = [:]
            for member in configuration.members {
                addresses[member] = configuration.contexts[member].flatMap(Addresses.init(context:)) ?? flags[member]
            }
            let changed = addresses.filter { state.addresses[$0.key] != $0.value }
            let removed = state.addresses.keys.filter { addresses[$0] == nil }
            state.configuration = configuration
            state.addresses = addresses
            return (changed, removed)
        }
    }

    public var configuration: ClusterConfiguration { state.withLock { $0.configuration } }

    func addresses(of member: NodeID) -> Addresses? { state.withLock { $0.addresses[member] } ?? flags[member] }

    /// Whether `node` is in the configuration. A node that belongs to none yet (it is joining)
    /// hears from any node of its cluster: the leader that added it has to reach it.
    func accepts(from node: NodeID) -> Bool {
        state.withLock { state in state.configuration.isEmpty || state.configuration.members.contains(node) }
    }
}
