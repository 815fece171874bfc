import ArgumentParser
import Client
import ClusterPKI
import CrashPoints
import Foundation
import LMDB
import LogStore
import Projections
import ToolSupport

/// Offline compaction of a stopped node's data directory.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Snapshot a stopped node's projections, discard the log behind the snapshot and shrink the log file."
    )
    @Argument(help: "The data directory of a stopped node.") var dir: String
    @Option(help: "Log entries to keep behind the snapshot.") var keep: UInt64 = 0

    func run() throws {
        guard FileSystem.exists(dir + "/log/data.mdb") else {
            throw ToolError("\(dir) is not a Chorus data directory (no log/data.mdb)")
        }
        // The node holds this lock while it runs; so does this command.
        let lock: DirectoryLock
        do {
            lock = try DirectoryLock(directory: dir)
        } catch is DirectoryLock.InUse {
            throw ToolError("\(dir) is in use by a running node: stop it first, or use `chorus-tools snapshot --endpoint HOST:PORT` on the running node")
        }
        defer { withExtendedLifetime(lock) {} }
        // After an unclean stop the projections may be torn (they skip fsync) yet look sound:
        // a snapshot of them would replace the log behind it, and the node would serve and
        // send it. The node rebuilds them at start; compact only what it has.
        if let boot = UncleanStop.check(dir) {
            let when = boot == UncleanStop.bootID ? "was killed" : "ended with the machine (power loss or a crash)"
            throw ToolError("the last run of the node on \(dir) \(when) and did not stop cleanly: its projections may be damaged. Start the node once (it rebuilds and checks them), stop it cleanly, then compact")
        }
        // The projections are written without fsync while compact replays onto them: marked
        // as a node's run is, so a power loss midway makes the next start rebuild them.
        try UncleanStop.markRunning(dir)
        let before = Self.bytes(dir + "/log/data.mdb")
        let shrunk = dir + "/log.compacting"
        try? FileManager.default.removeItem(atPath: shrunk)
        try FileManager.default.createDirectory(atPath: shrunk, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: shrunk) }

        let report = try snapshotAndCompact(copyLogTo: shrunk)
        CrashPoint.reach("compact-copied")
        // Every environment is closed now and the copy is durable (`Environment.copy` fsyncs
        // it). One rename swaps it in: a crash leaves either the old file or the new one,
        // never an empty one.
        try FileSystem.rename(shrunk + "/data.mdb", to: dir + "/log/data.mdb")
        try UncleanStop.markStopped(dir)
        print(report)
        print("log file: \(before) → \(Self.bytes(dir + "/log/data.mdb")) bytes")
    }

    private func snapshotAndCompact(copyLogTo shrunk: String) throws -> String {
        let log = try LogStore(directory: dir + "/log")
        let snapshots = try SnapshotStore(directory: dir + "/snapshots")
        let recorded = try log.snapshotMetadata()
        let state = try StateDirectory(directory: dir + "/state").open(logStart: try log.logStart().index, snapshot: (recorded.index, recorded.term), snapshots: snapshots)
        // Apply what committed and the node had not applied yet, as the node would on start.
        let commit = min(try log.hardState().commit, try log.lastIndex())
        let progress = ProgressBar("apply", total: Int(commit))
        let applied = try Replayer.replay(log, into: state, through: commit, progress: progress)
        progress.finish()
        try state.sync()
        let info = try snapshots.take(from: state, termAt: { try log.term(at: $0) })
        guard info.index > 0 else { return "nothing to compact: no entry was applied" }
        CrashPoint.reach("compact-snapshot-taken")
        let through = info.index > keep ? info.index - keep : 0
        try log.compact(to: StoredSnapshot(index: info.index, term: info.term, configuration: info.configuration), discardingThrough: through)
        CrashPoint.reach("compact-log-compacted")
        snapshots.prune(keeping: info)
        try log.environment.copy(to: shrunk, compact: true)
        return "applied \(applied) entries; snapshot at index \(info.index) (term \(info.term), \(info.size) bytes); the log now holds \(try log.firstIndex())...\(try log.lastIndex())"
    }

    static func bytes(_ path: String) -> UInt64 { FileSystem.size(path) ?? 0 }
}

/// Asks a running node for a snapshot.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Ask a running node to snapshot its projections now and compact its log."
    )
    @Option(help: "The node's peer address (--peer-listen, or --listen of an insecure node), host:port.") var endpoint: String
    @OptionGroup var certificate: OperatorCertificate
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let credentials = try certificate.files()
        let taken = try await takeSnapshot(endpoint: endpoint, operator: credentials)
        if json {
            print("{\"index\":\(taken.index),\"term\":\(taken.term),\"size_bytes\":\(taken.sizeBytes),\"log_first_index\":\(taken.logFirstIndex),\"duration_ms\":\(taken.durationMilliseconds)}")
        } else {
            print("snapshot at index \(taken.index) (term \(taken.term), \(taken.sizeBytes) bytes) in \(taken.durationMilliseconds) ms; the log now starts at \(taken.logFirstIndex)")
        }
    }
}
