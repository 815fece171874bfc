import Foundation
import LMDB
import LogStore
import Projections
import Raft
import Replica
import Synchronization
import ToolSupport

/// Rebuilds projections from a log: what a node does on every apply, in big batches.
struct Replayer {
    /// Entries per LMDB transaction: a transaction rewrites every page it touches, so fewer,
    /// larger ones write less (65,536 measured best against 4,096 and 262,144).
    static let batch = 65536

    /// Applies `log`'s entries `1...target` (or from the first held) to `state`; returns how
    /// many were applied. One thread reads and decodes the next batch while this one applies.
    static func replay(_ log: LogStore, into state: ChatState, through target: UInt64, progress: ProgressBar? = nil) throws -> Int {
        let next = max(try state.lastApplied() + 1, try log.firstIndex())
        if try state.lastApplied() + 1 < log.firstIndex() && next <= target {
            throw ToolError("the projections are at index \(try state.lastApplied()) but the log starts at \(try log.firstIndex()): replay needs a snapshot")
        }
        let batches = Handoff<Result<[CommittedEntry], any Error>>(capacity: 2)
        // Applied batches go back to the reader to be freed: releasing a million entries'
        // arrays is work the applying thread need not do, and the reader allocated them.
        let spent = Mutex<[[CommittedEntry]]>([])
        // The membership the node records with its projections, as its replica loop does.
        let recorded = try state.position().configuration
        let reader = Thread {
            var next = next
            var configuration = ClusterConfiguration(encoded: recorded) ?? ClusterConfiguration()
            while next <= target {
                spent.withLock { $0.removeAll() }
                do {
                    let entries = try log.entries(from: next, through: min(target, next + UInt64(batch) - 1))
                    guard let last = entries.last else { break }
                    let delivered = batches.put(.success(entries.map { entry in
                        // Membership entries (kind 1) carry no chat command; the node records
                        // the configuration they produce.
                        var committed = CommittedEntry(index: entry.index, term: entry.term, command: entry.kind == 0 && !entry.payload.isEmpty ? entry.payload : nil)
                        if entry.kind == Entry.Kind.configuration.rawValue, let change = ConfigurationChange(encoded: entry.payload) {
                            configuration = configuration.applying(change)
                            committed.configuration = configuration.encoded()
                        }
                        committed.decode()
                        return committed
                    }))
                    guard delivered else { break }
                    next = last.index + 1
                } catch {
                    batches.put(.failure(error))
                    break
                }
            }
            batches.close()
        }
        reader.start()
        defer { batches.drain() }
        var applied = 0
        while let entries = try batches.take()?.get() {
            try state.replay(entries)
            applied += entries.count
            progress?.update(Int(entries.last?.index ?? 0))
            spent.withLock { $0.append(entries) }
        }
        return applied
    }

    /// Projections at `target` built in `path`: from the best starting point among the
    /// replicas' snapshots and logs (the newest snapshot at or below `target` whose entries up
    /// to `target` some log still holds; or an empty state and a log that starts at 1).
    static func rebuild(at path: String, through target: UInt64, from replicas: [DataDir], progress: ProgressBar? = nil) throws -> (state: ChatState, applied: Int, snapshot: UInt64) {
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
        let state = try ChatState(directory: path, writeMap: false)
        return (state, try replay(best.log, into: state, through: target, progress: progress), best.snapshot?.index ?? 0)
    }

    /// A scratch directory removed when `body` returns.
    static func withScratch<R>(_ body: (String) throws -> R) throws -> R {
        let path = NSTemporaryDirectory() + "chorus-replay-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }
}

/// A bounded queue between one producing and one consuming thread.
final class Handoff<Element: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var closed = false
    private var abandoned = false
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Waits for room; false (and the item dropped) when the consumer has gone.
    @discardableResult
    func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !abandoned { condition.wait() }
        guard !abandoned else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// No more items will come.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, or nil once the producer closed and everything was taken.
    func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        guard !items.isEmpty else { return nil }
        condition.broadcast()
        return items.removeFirst()
    }

    /// The consumer stops: the producer's further items are dropped, and this waits until
    /// it has closed, so nothing it reads outlives the caller.
    func drain() {
        condition.lock()
        abandoned = true
        items.removeAll()
        condition.broadcast()
        while !closed { condition.wait() }
        condition.unlock()
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
