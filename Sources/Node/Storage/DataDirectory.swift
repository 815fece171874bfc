import Foundation
import LMDB
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
    /// A random number made with the directory: peers tell a restarted node (same number)
    /// from one whose data was wiped (a new one).
    public let incarnation: UInt64

    public init(path: String, clusterID: String, clusterIncarnation: String? = nil, nodeID: NodeID, stateMap: MapLimits = .standard, build: BuildVersions = .current) throws {
        self.path = path
        do {
            try FileSystem.makePrivateDirectory(path)
        } catch {
            throw ConfigurationError("\(error)")
        }
        // The lock first: nothing here, the identity check included, reads what another
        // process may be rewriting.
        do {
            lock = try DirectoryLock(directory: path)
        } catch let inUse as DirectoryLock.InUse {
            throw ConfigurationError(inUse.description)
        }
        incarnation = try Self.checkIdentity(path: path, clusterID: clusterID, nodeID: nodeID, clusterIncarnation: clusterIncarnation)
        self.clusterIncarnation = Self.clusterIncarnation(path: path)
        log = try LogStore(directory: path + "/log")
        try Self.refuseUnsound(log)
        snapshots = try SnapshotStore(directory: path + "/snapshots")
        stateDirectory = StateDirectory(directory: path + "/state", map: stateMap, build: build)
        sharedWithOthers = ["", "/identity", "/log", "/log/data.mdb", "/state", "/snapshots"].compactMap { name in
            guard let mode = FileSystem.permissions(path + name), mode & 0o077 != 0 else { return nil }
            return (path + name, mode)
        }
        // Before anything rebuilds them, the projections as found say whether this node ran.
        let appliedAsFound = (try? ChatState(directory: stateDirectory.currentPath, readOnly: true, map: stateMap, build: build).lastApplied()) ?? 0
        try Self.refuseLostLog(log, applied: appliedAsFound, snapshots: snapshots)
        let unclean = UncleanStop.check(path)
        if let earlierBoot = unclean, earlierBoot != UncleanStop.bootID {
            // The machine went down with the node (power loss, kernel crash): the projections
            // skip fsync and may hold torn pages. The log is fsynced: start them again from it.
            rebuiltAfterPowerLoss = true
            stoppedOnDiskFailure = earlierBoot == "disk-failed"
            let snapshot = try log.snapshotMetadata()
            state = try stateDirectory.rebuild(snapshot: (snapshot.index, snapshot.term), snapshots: snapshots)
        } else {
            rebuiltAfterPowerLoss = false
            stoppedOnDiskFailure = false
            let snapshot = try log.snapshotMetadata()
            state = try stateDirectory.open(logStart: try log.logStart().index, snapshot: (snapshot.index, snapshot.term), snapshots: snapshots)
        }
        do {
            try UncleanStop.markRunning(path)
        } catch {
            throw ConfigurationError("\(error)")
        }
    }

    /// What of the directory other users may read or enter: (path, permission bits). The
    /// node warns at start; its own files are created private.
    public let sharedWithOthers: [(path: String, mode: mode_t)]

    /// A log that holds nothing (no entry, no term, no snapshot) in a directory whose
    /// projections applied entries, or that keeps snapshots, was lost (a file replaced or
    /// truncated behind the node's back). Starting on it would bootstrap or join afresh under
    /// the old identity: the node would forget its votes and the entries it acknowledged.
    static func refuseLostLog(_ log: LogStore, applied: UInt64, snapshots: SnapshotStore) throws {
        guard try log.lastIndex() == 0, try log.hardState().term == 0, try log.snapshotMetadata().index == 0 else { return }
        let kept = snapshots.all()
        guard applied > 0 || !kept.isEmpty else { return }
        throw ConfigurationError("refusing to start: the Raft log in \(log.path) is empty, but this node has run (its projections applied \(applied) entries; \(kept.count) snapshots are kept): the log was lost, and starting would forget this node's votes and acknowledged entries. Restore the directory from a backup, or remove the node from the cluster (`chorus-tools member remove`) and add a new one with an empty data directory")
    }

    /// The incarnation of the cluster this directory's node belongs to, when the cluster was
    /// started from a backup or recovered (`ClusterName`).
    public let clusterIncarnation: String?

    /// The projections were rebuilt at start because the last run ended with the machine.
    public let rebuiltAfterPowerLoss: Bool
    /// The last run stopped on a disk failure (`markDiskFailed`): rebuilt for that reason.
    public let stoppedOnDiskFailure: Bool

    /// Records a clean stop: the next start trusts the projections as they are. When that
    /// cannot be made durable the next start rebuilds them, which is safe.
    /// After a disk failure: the next start rebuilds the projections from the log.
    public func markDiskFailed() throws {
        try UncleanStop.markDiskFailed(path)
    }

    public func markCleanStop() throws {
        try UncleanStop.markStopped(path)
    }

    /// A log holding a value no node could have written (an older version persisted a forged
    /// term, a disk flipped bits) is refused here, with what and where, rather than trapping in
    /// the Raft core on every start.
    static func refuseUnsound(_ log: LogStore) throws {
        var problems = try log.problems(maxValue: MessageLimits().maxValue, entryKinds: BuildVersions.entryKinds)
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

    /// Checks (or writes) `identity`: `cluster=…`, `node=…` and `incarnation=…` lines. A
    /// directory from before incarnations gets one now. Returns the incarnation.
    static func checkIdentity(path: String, clusterID: String, nodeID: NodeID, clusterIncarnation: String? = nil) throws -> UInt64 {
        let file = path + "/identity"
        let expected = "cluster=\(clusterID)\nnode=\(nodeID)\n"
        if let existing = FileManager.default.contents(atPath: file) {
            let text = String(decoding: existing, as: UTF8.self)
            let lines = text.split(separator: "\n")
            let recorded = lines.first { $0.hasPrefix(clusterIncarnationPrefix) }.map { String($0.dropFirst(clusterIncarnationPrefix.count)) }
            if let clusterIncarnation, clusterIncarnation != recorded {
                throw ConfigurationError("the data directory \(path) belongs to \(recorded.map { "incarnation \($0)" } ?? "the first incarnation") of cluster '\(clusterID)', not incarnation \(clusterIncarnation); refusing to start")
            }
            let owner = lines.filter { !Self.isAttribute($0) }.map { "\($0)\n" }.joined()
            guard owner == expected else {
                let found = lines.filter { !Self.isAttribute($0) }.joined(separator: ", ")
                throw ConfigurationError("the data directory \(path) belongs to \(found), not cluster=\(clusterID), node=\(nodeID); refusing to start")
            }
            if let line = lines.first(where: { $0.hasPrefix("incarnation=") }), let incarnation = UInt64(line.dropFirst("incarnation=".count)) {
                return incarnation
            }
            let incarnation = UInt64.random(in: 1...UInt64.max)
            let marked = lines.filter { $0.hasPrefix(Self.clusterVersionPrefix) || $0.hasPrefix(Self.clusterIncarnationPrefix) }.map { "\($0)\n" }.joined()
            try writeDurably(file, expected + "incarnation=\(incarnation)\n" + marked)
            return incarnation
        }
        let hasData = FileManager.default.fileExists(atPath: path + "/log/data.mdb")
        guard !hasData else {
            throw ConfigurationError("the data directory \(path) holds a log but no identity file; refusing to guess whose it is")
        }
        // Written atomically and fsynced before anything else is created.
        let incarnation = UInt64.random(in: 1...UInt64.max)
        try writeDurably(file, expected + "incarnation=\(incarnation)\n" + (clusterIncarnation.map { clusterIncarnationPrefix + $0 + "\n" } ?? ""))
        return incarnation
    }

    /// Whether an identity line says something about the directory (its incarnations, the
    /// cluster version) rather than whose it is.
    static func isAttribute(_ line: Substring) -> Bool {
        line.hasPrefix("incarnation=") || line.hasPrefix(clusterVersionPrefix) || line.hasPrefix(clusterIncarnationPrefix)
    }

    /// The identity line of a cluster started from a backup or recovered from a survivor: a
    /// random name for this start of the cluster. Its nodes say it in every peer message
    /// (`ClusterName`), so nodes of the cluster as it was before, which
    /// share its name, are refused if they come back.
    static let clusterIncarnationPrefix = "cluster-incarnation="

    /// The cluster incarnation `identity` records (nil for a cluster as first bootstrapped).
    public static func clusterIncarnation(path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path + "/identity") else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix(clusterIncarnationPrefix) }.map { String($0.dropFirst(clusterIncarnationPrefix.count)) }
    }

    /// The identity line that records the cluster version this directory's node applied. A
    /// release before cluster versions takes any line it does not know for another owner and
    /// refuses to start: an old build never runs on a log past what it can apply (it would
    /// misapply what its own log holds, though its peers refuse it).
    static let clusterVersionPrefix = "cluster-version="

    /// The cluster version `identity` records (1 when none).
    public static func markedClusterVersion(path: String) -> UInt32 {
        guard let data = FileManager.default.contents(atPath: path + "/identity") else { return 1 }
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .compactMap { $0.hasPrefix(clusterVersionPrefix) ? UInt32($0.dropFirst(clusterVersionPrefix.count)) : nil }.max() ?? 1
    }

    /// Records in `identity`, durably, that this node applied cluster version `version`.
    public static func markClusterVersion(_ version: UInt32, path: String) throws {
        guard version > markedClusterVersion(path: path) else { return }
        let file = path + "/identity"
        let text = FileManager.default.contents(atPath: file).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let kept = text.split(separator: "\n").filter { !$0.hasPrefix(clusterVersionPrefix) }.map { "\($0)\n" }.joined()
        try writeDurably(file, kept + clusterVersionPrefix + "\(version)\n")
    }

    /// Replaces `file` with `text` atomically and durably, readable by this user only.
    static func writeDurably(_ file: String, _ text: String) throws {
        do {
            try FileSystem.writeAtomically(Array(text.utf8), to: file)
        } catch {
            throw ConfigurationError("\(error)")
        }
    }
}
