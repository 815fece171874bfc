import Foundation
import LogStore
import Projections
import Raft

/// A node's data directory: `log/` (the Raft log, fsynced), `state/` (the projections, see
/// `StateDirectory`), `snapshots/`, and `identity` (which cluster and node it belongs to), so
/// that starting a node on another cluster's data is refused instead of corrupting both.
public struct DataDirectory: Sendable {
    public let path: String
    public let log: LogStore
    public let stateDirectory: StateDirectory
    public let snapshots: SnapshotStore
    /// The projections as found, or as recovered from the latest snapshot.
    public let state: ChatState
    /// Held while the directory is open: a second node, or an offline tool, is refused.
    private let lock: DirectoryLock

    public init(path: String, clusterID: String, nodeID: NodeID) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Self.checkIdentity(path: path, clusterID: clusterID, nodeID: nodeID)
        do {
            lock = try DirectoryLock(directory: path)
        } catch let inUse as DirectoryLock.InUse {
            throw ConfigurationError(inUse.description)
        }
        log = try LogStore(directory: path + "/log")
        try Self.refuseUnsound(log)
        snapshots = try SnapshotStore(directory: path + "/snapshots")
        stateDirectory = StateDirectory(directory: path + "/state")
        state = try stateDirectory.open(recoveringWith: log, snapshots: snapshots)
    }

    /// A log holding a value no node could have written (an older version persisted a forged
    /// term, a disk flipped bits) is refused here, with what and where, rather than trapping in
    /// the Raft core on every start.
    static func refuseUnsound(_ log: LogStore) throws {
        var problems = try log.problems(maxValue: MessageLimits().maxValue)
        let snapshot = try log.snapshotMetadata()
        if snapshot.index > 0 {
            if let configuration = ClusterConfiguration(encoded: snapshot.configuration) {
                if let refusal = RaftCore.validate(configuration, MessageLimits()) {
                    problems.append("\(log.path): the snapshot's configuration: \(refusal)")
                }
            } else {
                problems.append("\(log.path): the snapshot's configuration cannot be read")
            }
        }
        guard problems.isEmpty else {
            throw ConfigurationError("refusing to start on an unsound data directory (`chorus-tools status` shows the same):\n  "
                + problems.joined(separator: "\n  "))
        }
    }

    static func checkIdentity(path: String, clusterID: String, nodeID: NodeID) throws {
        let file = path + "/identity"
        let expected = "cluster=\(clusterID)\nnode=\(nodeID)\n"
        if let existing = FileManager.default.contents(atPath: file) {
            let text = String(decoding: existing, as: UTF8.self)
            guard text == expected else {
                let found = text.split(separator: "\n").joined(separator: ", ")
                throw ConfigurationError("the data directory \(path) belongs to \(found), not cluster=\(clusterID), node=\(nodeID); refusing to start")
            }
            return
        }
        let hasData = FileManager.default.fileExists(atPath: path + "/log/data.mdb")
        guard !hasData else {
            throw ConfigurationError("the data directory \(path) holds a log but no identity file; refusing to guess whose it is")
        }
        // Written atomically and fsynced before anything else is created.
        let temporary = file + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(expected.utf8)) else {
            throw ConfigurationError("cannot write \(temporary)")
        }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temporary, file) == 0 else { throw ConfigurationError("cannot create \(file): errno \(errno)") }
    }
}
