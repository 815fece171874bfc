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
        var applied = 0
        while next <= target {
            let entries = try log.entries(from: next, through: min(target, next + UInt64(batch) - 1))
            guard let last = entries.last else { break }
            _ = try state.apply(entries.map { entry in
                CommittedEntry(index: entry.index, command: entry.kind == 0 && !entry.payload.isEmpty ? entry.payload : nil)
            })
            applied += entries.count
            next = last.index + 1
            progress?.update(Int(last.index))
        }
        return applied
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

    init(_ path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path + "/log/data.mdb") else {
            throw ToolError("\(path) is not a Chorus data directory (no log/data.mdb)")
        }
        log = try LogStore(directory: path + "/log", readOnly: true)
        state = FileManager.default.fileExists(atPath: path + "/state/data.mdb") ? try ChatState(directory: path + "/state", readOnly: true) : nil
    }
}

struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
