import Raft
import Synchronization

/// Where each member of the cluster is reached, as the Raft configuration says.
///
/// The configuration lives in the log (and in snapshots): every member's addresses ride in
/// its configuration context, written when it was added. The peer links update this
/// directory whenever the replica loop tells them the configuration changed, before any
/// message of that change is sent; the links, the peer listener and the leader hints read it. Members without a context (a data directory from before
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
        /// Members of an earlier configuration that are not in this one.
        var formerMembers: Set<NodeID> = []
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
            if !state.configuration.isEmpty {
                state.formerMembers.formUnion(Set(state.configuration.members).subtracting(configuration.members))
            }
            state.formerMembers.subtract(configuration.members)
            state.configuration = configuration
            state.addresses = addresses
            return (changed, removed)
        }
    }

    public var configuration: ClusterConfiguration { state.withLock { $0.configuration } }

    func addresses(of member: NodeID) -> Addresses? { state.withLock { $0.addresses[member] } ?? flags[member] }

    /// Whether `node` was a member of a configuration this node held, and is not now.
    func wasMember(_ node: NodeID) -> Bool {
        state.withLock { $0.formerMembers.contains(node) }
    }

    /// Whether `node` is in the configuration. A node that belongs to none yet (it is joining)
    /// hears from any node of its cluster: the leader that added it has to reach it.
    func accepts(from node: NodeID) -> Bool {
        state.withLock { state in state.configuration.isEmpty || state.configuration.members.contains(node) }
    }

    /// Why a stream from `node` is refused, or nil when it is accepted. `heardBefore` says
    /// whether this node has taken messages from it in the past (its incarnation is on
    /// record), which only a member's could be: then it was removed, not yet to be added.
    func refusal(of node: NodeID, heardBefore: Bool) -> (reason: String, message: String)? {
        state.withLock { state in
            let configuration = state.configuration
            guard !configuration.isEmpty, !configuration.members.contains(node) else { return nil }
            let members = configuration.members.sorted().map(String.init).joined(separator: ", ")
            if state.formerMembers.contains(node) || heardBefore {
                return (RemovalNotice.removed, "node \(node) was removed from this cluster (its members are \(members)); it takes no part any more. Add the machine back under a new id with an empty data directory (chorus-tools member add, then --join)")
            }
            return (RemovalNotice.notMember, "node \(node) is not a member of this cluster (its members are \(members)): add it first (chorus-tools member add), or this node has not yet heard that it was added")
        }
    }
}
