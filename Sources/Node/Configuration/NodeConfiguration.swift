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
    /// The address this node listens on for clients and peers.
    public var listen: PeerAddress
    /// Every member of the cluster, this node included.
    public var members: [NodeID: PeerAddress]
    public var dataDirectory: String
    /// Names the cluster; a data directory or a peer of another cluster is refused.
    public var clusterID: String
    /// The length of one Raft tick.
    public var tickInterval: Duration = .milliseconds(10)
    /// Election timeout in ticks (randomised up to twice this).
    public var electionTicks: Int = 15
    public var heartbeatTicks: Int = 3
    /// PBKDF2 rounds for new passwords (OWASP's floor by default; tests lower it).
    public var passwordIterations: UInt32 = 210_000
    /// Largest request a client or peer may send, in bytes.
    public var maxRequestBytes: Int = 4 << 20
    /// How long a write may wait for its entry to commit before the client is told to retry.
    public var proposalTimeout: Duration = .seconds(5)
    /// How long SIGTERM waits for open calls before the process exits anyway.
    public var shutdownGracePeriod: Duration = .seconds(5)
    /// Applied entries between automatic snapshots (0: only on request).
    public var snapshotInterval: UInt64 = 20_000
    /// Entries kept in the log behind a snapshot, so a follower a little behind catches up
    /// from the log rather than by a whole snapshot.
    public var snapshotTrailingEntries: UInt64 = 5_000
    /// The largest snapshot file this node accepts from a leader (16 GiB by default).
    public var maxSnapshotBytes: UInt64 = 16 << 30

    public init(id: NodeID, listen: PeerAddress, members: [NodeID: PeerAddress], dataDirectory: String, clusterID: String) {
        self.id = id
        self.listen = listen
        self.members = members
        self.dataDirectory = dataDirectory
        self.clusterID = clusterID
    }

    /// Parses `--peer` values of the form `ID=host:port`.
    public static func parseMembers(_ specs: [String]) throws -> [NodeID: PeerAddress] {
        var members: [NodeID: PeerAddress] = [:]
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = NodeID(parts[0]), id > 0, let address = PeerAddress(String(parts[1])) else {
                throw ConfigurationError("peer '\(spec)' is not of the form ID=host:port (ID a positive number)")
            }
            guard members[id] == nil else { throw ConfigurationError("peer id \(id) is given twice") }
            members[id] = address
        }
        return members
    }

    /// Checks the configuration is usable before anything is opened.
    public func validate() throws {
        guard id > 0 else { throw ConfigurationError("the node id must be a positive number") }
        guard members[id] != nil else {
            throw ConfigurationError("node \(id) is not among the peers \(members.keys.sorted()); list every member, this node included")
        }
        guard members.count % 2 == 1 else {
            throw ConfigurationError("a cluster of \(members.count) members tolerates no more failures than one of \(members.count - 1); use an odd number")
        }
        guard electionTicks > heartbeatTicks * 2 else {
            throw ConfigurationError("the election timeout (\(electionTicks) ticks) must be well above the heartbeat (\(heartbeatTicks) ticks)")
        }
        guard !clusterID.isEmpty else { throw ConfigurationError("the cluster id is empty") }
        guard passwordIterations >= 1, passwordIterations <= Validation.maxPasswordIterations else {
            throw ConfigurationError("--password-iterations must be 1 to \(Validation.maxPasswordIterations), not \(passwordIterations)")
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
