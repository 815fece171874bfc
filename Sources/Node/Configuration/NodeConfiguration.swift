import ClusterPKI
import Foundation
import Projections
import Raft

/// A `host:port` address of a node.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port), colon != text.startIndex
        else { return nil }
        host = String(text[..<colon])
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// Everything a node needs to run: who it is, who its peers are, where its data lives.
public struct NodeConfiguration: Sendable {
    public var id: NodeID
    /// The address this node listens on for clients (the `Chat` and health APIs).
    public var listen: PeerAddress
    /// The address peers and operators reach this node on (the `Peer` and `Admin` APIs),
    /// over mutual TLS. Nil only when insecure: then one listener serves every API.
    public var peerListen: PeerAddress?
    /// Every member of the cluster, this node included, by its peer address.
    public var members: [NodeID: PeerAddress]
    /// Where clients reach each member, when that is not its peer address (two listeners):
    /// what a follower names when it points a client at the leader.
    public var clientAddresses: [NodeID: PeerAddress] = [:]
    /// The cluster's CA and this node's certificate and key; nil runs plaintext (`--insecure`).
    public var tls: TLSFiles?

    /// The address clients reach `member` on: as the cluster's configuration says, or as the
    /// flags say for a member it has no addresses for.
    public func clientAddress(of member: NodeID) -> PeerAddress? {
        if let known = directory?.addresses(of: member) { return known.client ?? (peerListen == nil ? known.peer : nil) }
        return clientAddresses[member] ?? (peerListen == nil ? members[member] : nil)
    }
    /// Start as a new member of a running cluster (`--join`): nothing is bootstrapped; the node
    /// waits until an operator adds it and the leader sends it the log or a snapshot.
    public var join = false
    /// The membership as the log says, once the node runs (see `MemberDirectory`).
    public var directory: MemberDirectory?

    /// The members and addresses the flags name, as the directory takes them.
    var flagAddresses: [NodeID: MemberDirectory.Addresses] {
        Dictionary(uniqueKeysWithValues: members.map { ($0.key, MemberDirectory.Addresses(peer: $0.value, client: clientAddresses[$0.key])) })
    }
    public var dataDirectory: String
    /// Names the cluster; a data directory or a peer of another cluster is refused.
    public var clusterID: String
    /// The incarnation of a cluster started from a backup or recovered from a survivor, as
    /// `--cluster-id ID~INCARNATION` gives it: a new member's data directory records it, and
    /// an existing one must record the same (`DataDirectory`).
    public var clusterIncarnation: String?
    /// The length of one Raft tick.
    public var tickInterval: Duration = .milliseconds(10)
    /// Election timeout in ticks (randomised up to twice this).
    public var electionTicks: Int = 15
    public var heartbeatTicks: Int = 3
    /// PBKDF2 rounds for new passwords (OWASP's floor by default; tests lower it).
    public var passwordIterations: UInt32 = 210_000
    /// Largest request a client may send, in bytes; a larger one is answered with
    /// RESOURCE_EXHAUSTED. Every valid request is far smaller (a body is at most 64 KiB).
    public var maxRequestBytes: Int = 256 << 10
    /// Proposals admitted and not yet answered, and their bytes: beyond them a write fails
    /// at once with RESOURCE_EXHAUSTED and the client backs off.
    public var maxPendingProposals = 20_000
    public var maxPendingProposalBytes = 64 << 20
    /// Linearizable reads waiting for their ReadIndex round and their index to be applied:
    /// beyond them a read fails at once with RESOURCE_EXHAUSTED. Each holds a task and a
    /// place in the Raft loop's bookkeeping, and a read stream may carry many per call.
    public var maxPendingReads = 20_000
    /// Bounds of each subscription's buffer and of subscriptions per user (see `EventHub`).
    public var subscriptionLimits = EventHub.Limits()
    /// A session ends after this long unused, or this long after login, whatever its use
    /// (zero: no limit). Decided in apply by the log's clock.
    public var sessionIdle: Duration = .seconds(7 * 24 * 3600)
    public var sessionLifetime: Duration = .seconds(30 * 24 * 3600)
    /// Per client address, a minute: failed password checks (logins and account deletions)
    /// and accounts created. Past them, RESOURCE_EXHAUSTED with when to retry.
    public var failedLoginsPerMinute = 30
    public var accountCreationsPerMinute = 120
    /// Requests without a live session one client address may make a minute (each costs a
    /// round trip to the leader, never a log entry).
    public var unauthenticatedPerMinute = 120
    /// Threads that hash passwords, and the most checks admitted at once (running and
    /// waiting); past that, RESOURCE_EXHAUSTED.
    public var passwordThreads = 1
    /// Event loops serving clients: each connection lives on one, with its handlers. More
    /// than one lets a node serve many connections from as many cores.
    public var clientThreads = NodeConfiguration.defaultClientThreads
    public static var defaultClientThreads: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 8) }
    public var maxPasswordChecks = 32
    /// Calls one connection may have open at once, advertised in HTTP/2 SETTINGS so that
    /// clients queue the rest instead of having the connection torn down.
    public var maxConcurrentStreams: Int = 1_024
    /// A connection silent this long is pinged, and closed if the answer takes longer than
    /// `keepaliveTimeout`: a dead client or peer is noticed even when no call is open.
    public var keepaliveInterval: Duration = .seconds(10)
    public var keepaliveTimeout: Duration = .seconds(5)
    /// How long a write may wait for its entry to commit before the client is told to retry.
    public var proposalTimeout: Duration = .seconds(5)
    /// How long SIGTERM lets open client calls finish before it closes them.
    public var drainPeriod: Duration = .seconds(2)
    /// How long a graceful shutdown may take in all before it turns into cancellation.
    public var shutdownGracePeriod: Duration = .seconds(5)
    /// Applied entries between automatic snapshots (0: only on request).
    public var snapshotInterval: UInt64 = 20_000
    /// Entries kept in the log behind a snapshot, so a follower a little behind catches up
    /// from the log rather than by a whole snapshot.
    public var snapshotTrailingEntries: UInt64 = 5_000
    /// The largest snapshot file this node accepts from a leader (16 GiB by default).
    public var maxSnapshotBytes: UInt64 = 16 << 30
    /// Free space the file systems holding the log and the projections must keep. The
    /// projections are written through a memory map: a page the file system cannot back ends
    /// the process with SIGBUS, not an error, so the node stops cleanly before that.
    public var minimumFreeSpace: UInt64 = 64 << 20
    /// Where `/metrics`, `/healthz` and `/readyz` are served over plain HTTP; nil: nowhere.
    public var metricsListen: PeerAddress?
    /// The projections' memory map: its size at open and how far it may double when full.
    /// Small by default, since the map sizes the (sparse) data file.
    public var stateMapSize: Int = MapLimits.standard.initial
    public var stateMapMaximum: Int = MapLimits.standard.maximum
    /// Bugs planted for the fault-injection suite (debug builds only; see `PlantedNodeBugs`).
    public var plantedBugs = PlantedNodeBugs()
    /// What this build applies: `.current`, or one cluster version less under the test switch
    /// `PlantedNodeBugs.oneVersionOlder`.
    public var build: BuildVersions {
        plantedBugs.oneVersionOlder ? BuildVersions(maxClusterVersion: BuildVersions.current.maxClusterVersion - 1) : .current
    }

    public init(id: NodeID, listen: PeerAddress, members: [NodeID: PeerAddress], dataDirectory: String, clusterID: String) {
        self.id = id
        self.listen = listen
        self.members = members
        self.dataDirectory = dataDirectory
        self.clusterID = clusterID
    }

    /// Parses a size such as `4096`, `64MiB`, `1GiB` or `2T` (binary units; a trailing `B`
    /// or `iB` is optional). Nil for anything else, zero, or a size past 2^50.
    public static func parseByteSize(_ text: String) -> Int? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        let units: [(String, Int)] = [("K", 10), ("M", 20), ("G", 30), ("T", 40)]
        var shift = 0
        for suffix in ["iB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits = digits.dropLast(suffix.count)
            break
        }
        if let unit = units.first(where: { digits.uppercased().hasSuffix($0.0) }) {
            shift = unit.1
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int(digits), value > 0,
              value <= (1 << 50) >> shift else { return nil }
        return value << shift
    }

    /// Parses `--peer` values of the form `ID=host:port` (one listener) or
    /// `ID=peerhost:port,clienthost:port` (two listeners): the peer address, and where clients
    /// reach that member.
    public static func parseMembers(_ specs: [String]) throws -> (peers: [NodeID: PeerAddress], clients: [NodeID: PeerAddress]) {
        var members: [NodeID: PeerAddress] = [:]
        var clients: [NodeID: PeerAddress] = [:]
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1)
            let addresses = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false) : []
            guard parts.count == 2, let id = NodeID(parts[0]), id > 0, (1...2).contains(addresses.count),
                  let address = PeerAddress(String(addresses[0]))
            else {
                throw ConfigurationError("peer '\(spec)' is not of the form ID=host:port or ID=peerhost:port,clienthost:port (ID a positive number)")
            }
            guard members[id] == nil else { throw ConfigurationError("peer id \(id) is given twice") }
            members[id] = address
            if addresses.count == 2 {
                guard let client = PeerAddress(String(addresses[1])) else { throw ConfigurationError("peer '\(spec)': '\(addresses[1])' is not host:port") }
                clients[id] = client
            }
        }
        return (members, clients)
    }

    /// Checks the configuration is usable before anything is opened.
    /// A request limit must admit the largest valid request (a 64 KiB body and its envelope).
    public static let minimumRequestLimit = 80 << 10
    /// Above this, one connection's open calls could hold gigabytes of half-received requests.
    public static let maximumRequestLimit = 16 << 20

    public func validate() throws {
        guard id > 0 else { throw ConfigurationError("the node id must be a positive number") }
        guard members[id] != nil else {
            throw ConfigurationError("node \(id) is not among the peers \(members.keys.sorted()); list every member, this node included")
        }
        guard electionTicks > heartbeatTicks * 2 else {
            throw ConfigurationError("the election timeout (\(electionTicks) ticks) must be well above the heartbeat (\(heartbeatTicks) ticks)")
        }
        guard !clusterID.isEmpty else { throw ConfigurationError("the cluster id is empty") }
        guard !clusterID.contains("~") else { throw ConfigurationError("the cluster id '\(clusterID)' holds '~', which separates the id from its incarnation (ID~INCARNATION)") }
        if let clusterIncarnation, clusterIncarnation.isEmpty || !clusterIncarnation.allSatisfy(\.isHexDigit) {
            throw ConfigurationError("the cluster incarnation '\(clusterIncarnation)' is not hexadecimal (chorus-tools recover and restore print it)")
        }
        guard maxRequestBytes >= Self.minimumRequestLimit, maxRequestBytes <= Self.maximumRequestLimit else {
            throw ConfigurationError("--max-request-bytes must be \(Self.minimumRequestLimit) to \(Self.maximumRequestLimit), not \(maxRequestBytes)")
        }
        guard maxPendingProposals >= 1, maxPendingProposalBytes >= Self.minimumRequestLimit else {
            throw ConfigurationError("--max-pending-proposals must be at least 1 and --max-pending-proposal-bytes at least \(Self.minimumRequestLimit)")
        }
        guard maxPendingReads >= 1 else { throw ConfigurationError("--max-pending-reads must be at least 1") }
        guard failedLoginsPerMinute >= 1, accountCreationsPerMinute >= 1, unauthenticatedPerMinute >= 1 else {
            throw ConfigurationError("--failed-logins-per-minute, --account-creations-per-minute and --unauthenticated-per-minute must be at least 1")
        }
        guard clientThreads >= 1, clientThreads <= 256 else {
            throw ConfigurationError("--client-threads must be 1 to 256, not \(clientThreads)")
        }
        guard passwordThreads >= 1, passwordThreads <= 256, maxPasswordChecks >= passwordThreads else {
            throw ConfigurationError("--password-threads must be 1 to 256 and --max-password-checks at least as many")
        }
        guard maxConcurrentStreams >= 1, maxConcurrentStreams <= 1 << 20 else {
            throw ConfigurationError("--max-concurrent-streams must be 1 to \(1 << 20), not \(maxConcurrentStreams)")
        }
        guard passwordIterations >= 1, passwordIterations <= Validation.maxPasswordIterations else {
            throw ConfigurationError("--password-iterations must be 1 to \(Validation.maxPasswordIterations), not \(passwordIterations)")
        }
        if let tls {
            guard let peerListen, peerListen != listen else {
                throw ConfigurationError("with TLS, peers need a listener of their own: give --peer-listen, an address other than --listen")
            }
            let identity: Identity
            do { identity = try tls.identity() } catch { throw ConfigurationError("the TLS files: \(error)") }
            guard identity == .node(cluster: clusterID, id: id) else {
                throw ConfigurationError("\(tls.certificate) is the certificate of \(identity), not of node \(id) of cluster '\(clusterID)'")
            }
        }
        guard members.keys.allSatisfy({ $0 <= MessageLimits().maxValue }) else {
            throw ConfigurationError("node ids must be at most 2^62")
        }
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Duration {
    /// Whole milliseconds, for the log's integer timestamps.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
