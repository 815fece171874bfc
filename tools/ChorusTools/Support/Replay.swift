import Foundation
import LogStore
import Projections

/// Rebuilds projections from a log: what a node does on every apply, in big batches.
struct Replayer {
    /// Entries per LMDB transaction.
    static let batch = 4096

    /// Applies `log`'s entries `1...target` (or from the first held) to `state`; returns how
    /// many were applied.
    static func replay(_ log: LogStore, into state: ChatState, through target: UInt64, progress: Progress? = nil) throws -> Int {
        var next = max(try state.lastApplied() + 1, try log.firstIndex())
        if try state.lastApplied() + 1 < log.firstIndex() && next <= target {
            throw ToolError("the projections are at index \(try state.lastApplied()) but the log starts at \(try log.firstIndex()): replay needs a snapshot")
        }
        var applied = 0
        while next <= target {
            let entries = try log.entries(from: next, through: min(target, next + UInt64(batch) - 1))
            guard let last = entries.last else { break }
            _ = try state.apply(entries.map { entry in
                // Membership entries (kind 1) carry no chat command; the node also records the
                // configuration they produce, which needs the consensus layer to decode.
                CommittedEntry(index: entry.index, term: entry.term, command: entry.kind == 0 && !entry.payload.isEmpty ? entry.payload : nil)
            })
            applied += entries.count
            next = last.index + 1
            progress?.update(Int(last.index))
        }
        return applied
    }

    /// Projections at `target` built in `path`: from the best starting point among the
    /// replicas' snapshots and logs (the newest snapshot at or below `target` whose entries up
    /// to `target` some log still holds; or an empty state and a log that starts at 1).
    static func rebuild(at path: String, through target: UInt64, from replicas: [DataDir], progress: Progress? = nil) throws -> (state: ChatState, applied: Int, snapshot: UInt64) {
        var best: (snapshot: SnapshotInfo?, file: String?, log: LogStore)?
        for log in replicas.map(\.log) {
            let start = try log.logStart().index
            guard try log.lastIndex() >= target || start == target else { continue }
            if start == 0, best == nil { best = (nil, nil, log) }
            for replica in replicas {
                for info in replica.snapshots.all() where info.index <= target && info.index >= start {
                    if best?.snapshot == nil || best!.snapshot!.index < info.index {
                        best = (info, replica.snapshots.dataPath(info), log)
                    }
                }
            }
        }
        guard let best else {
            throw ToolError("no snapshot and log together reach index \(target): the logs were compacted past it")
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if let file = best.file {
            try FileSystem.copy(file, to: path + "/data.mdb")
        }
        let state = try ChatState(directory: path)
        return (state, try replay(best.log, into: state, through: target, progress: progress), best.snapshot?.index ?? 0)
    }

    /// A scratch directory removed when `body` returns.
    static func withScratch<R>(_ body: (String) throws -> R) throws -> R {
        let path = NSTemporaryDirectory() + "chorus-replay-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
final class Progress {
    let total: Int
    let label: String
    let enabled = isatty(STDERR_FILENO) == 1
    private var lastDrawn = -1

    init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastDrawn else { return }
        lastDrawn = percent
        let filled = percent * 30 / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)%".utf8))
    }

    func finish() {
        if enabled && lastDrawn >= 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Opens a node's data directory read-only (the node may be running: LMDB readers never
/// block its writer).
struct DataDir {
    let path: String
    let log: LogStore
    let state: ChatState?
    let snapshots: SnapshotStore

    init(_ path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path + "/log/data.mdb") else {
            throw ToolError("\(path) is not a Chorus data directory (no log/data.mdb)")
        }
        log = try LogStore(directory: path + "/log", readOnly: true)
        let statePath = StateDirectory(directory: path + "/state").currentPath
        state = FileManager.default.fileExists(atPath: statePath + "/data.mdb") ? try ChatState(directory: statePath, readOnly: true) : nil
        snapshots = SnapshotStore(existing: path + "/snapshots")
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
