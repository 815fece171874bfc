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

    public init(path: String, clusterID: String, nodeID: NodeID, stateMap: MapLimits = .standard, build: BuildVersions = .current) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        incarnation = try Self.checkIdentity(path: path, clusterID: clusterID, nodeID: nodeID)
        do {
            lock = try DirectoryLock(directory: path)
        } catch let inUse as DirectoryLock.InUse {
            throw ConfigurationError(inUse.description)
        }
        log = try LogStore(directory: path + "/log")
        try Self.refuseUnsound(log)
        snapshots = try SnapshotStore(directory: path + "/snapshots")
        stateDirectory = StateDirectory(directory: path + "/state", map: stateMap, build: build)
        let unclean = UncleanStop.check(path)
        if let earlierBoot = unclean, earlierBoot != UncleanStop.bootID {
            // The machine went down with the node (power loss, kernel crash): the projections
            // skip fsync and may hold torn pages. The log is fsynced: start them again from it.
            rebuiltAfterPowerLoss = true
            let snapshot = try log.snapshotMetadata()
            state = try stateDirectory.rebuild(snapshot: (snapshot.index, snapshot.term), snapshots: snapshots)
        } else {
            rebuiltAfterPowerLoss = false
            let snapshot = try log.snapshotMetadata()
            state = try stateDirectory.open(logStart: try log.logStart().index, snapshot: (snapshot.index, snapshot.term), snapshots: snapshots)
        }
        try UncleanStop.markRunning(path)
    }

    /// The projections were rebuilt at start because the last run ended with the machine.
    public let rebuiltAfterPowerLoss: Bool

    /// Records a clean stop: the next start trusts the projections as they are.
    public func markCleanStop() {
        UncleanStop.markStopped(path)
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
    static func checkIdentity(path: String, clusterID: String, nodeID: NodeID) throws -> UInt64 {
        let file = path + "/identity"
        let expected = "cluster=\(clusterID)\nnode=\(nodeID)\n"
        if let existing = FileManager.default.contents(atPath: file) {
            let text = String(decoding: existing, as: UTF8.self)
            let lines = text.split(separator: "\n")
            let owner = lines.filter { !$0.hasPrefix("incarnation=") && !$0.hasPrefix(Self.clusterVersionPrefix) }.map { "\($0)\n" }.joined()
            guard owner == expected else {
                let found = lines.filter { !$0.hasPrefix("incarnation=") && !$0.hasPrefix(Self.clusterVersionPrefix) }.joined(separator: ", ")
                throw ConfigurationError("the data directory \(path) belongs to \(found), not cluster=\(clusterID), node=\(nodeID); refusing to start")
            }
            if let line = lines.first(where: { $0.hasPrefix("incarnation=") }), let incarnation = UInt64(line.dropFirst("incarnation=".count)) {
                return incarnation
            }
            let incarnation = UInt64.random(in: 1...UInt64.max)
            let marked = lines.filter { $0.hasPrefix(Self.clusterVersionPrefix) }.map { "\($0)\n" }.joined()
            try writeDurably(file, expected + "incarnation=\(incarnation)\n" + marked)
            return incarnation
        }
        let hasData = FileManager.default.fileExists(atPath: path + "/log/data.mdb")
        guard !hasData else {
            throw ConfigurationError("the data directory \(path) holds a log but no identity file; refusing to guess whose it is")
        }
        // Written atomically and fsynced before anything else is created.
        let incarnation = UInt64.random(in: 1...UInt64.max)
        try writeDurably(file, expected + "incarnation=\(incarnation)\n")
        return incarnation
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

    /// Replaces `file` with `text` atomically and durably (temporary file, fsync, rename,
    /// fsync of the directory).
    static func writeDurably(_ file: String, _ text: String) throws {
        let temporary = file + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw ConfigurationError("cannot write \(temporary)")
        }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temporary, file) == 0 else { throw ConfigurationError("cannot create \(file): errno \(errno)") }
        let directory = open((file as NSString).deletingLastPathComponent, O_RDONLY)
        if directory >= 0 { fsync(directory); close(directory) }
    }
}

/// `DATA/running` holds the kernel's boot id while a node runs and is removed when it stops
/// cleanly. Found at start, it means the last run ended abruptly: on the same boot (a killed
/// process) the page cache kept every write, but on another boot the unsynced projections
/// cannot be trusted.
enum UncleanStop {
    /// This boot's id (Linux); empty where there is none, which never asks for a rebuild.
    static let bootID: String = {
        guard let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") else { return "" }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// The boot id of the run that did not stop cleanly, or nil after a clean stop.
    static func check(_ directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory + "/running") else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.hasPrefix("boot=") ? String(text.dropFirst("boot=".count)) : ""
    }

    static func markRunning(_ directory: String) throws {
        guard !bootID.isEmpty else { return }
        try DataDirectory.writeDurably(directory + "/running", "boot=\(bootID)\n")
    }

    static func markStopped(_ directory: String) {
        unlink(directory + "/running")
        let fd = open(directory, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
