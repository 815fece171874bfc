import ArgumentParser
import CLMDB
import Foundation
import LogStore
import ToolSupport

/// Measures `LogStore.append` against raw LMDB puts of the same bytes with the same commit
/// pattern (one fsynced transaction per batch), so the store's own overhead is visible; and
/// both against what a write-ahead log such as etcd's pays for the same batch: the bytes
/// appended to a preallocated file and one fdatasync. An LMDB commit also writes its
/// copied-on-write pages and a meta page through a synchronous descriptor, so the last row is
/// the floor a log of our own would have on this disk.
struct LogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-log",
        abstract: "Log append throughput: LogStore next to raw LMDB and a plain append+fdatasync, per batch size."
    )

    @Option(help: "Directory for scratch environments (removed afterwards).") var dir: String = NSTemporaryDirectory() + "chorus-bench-log"
    @Option(parsing: .upToNextOption, help: "Batch sizes to measure.") var batch: [Int] = [1, 64, 1024]
    @Option(help: "Payload bytes per entry.") var size: Int = 256
    @Option(help: "Seconds per measurement.") var seconds: Double = 3

    func run() throws {
        print("batch  entry  store        entries/s   batches/s")
        for batchSize in batch {
            for store in ["raw-lmdb", "LogStore", "append"] {
                let path = "\(dir)/\(store)-\(batchSize)"
                try? FileManager.default.removeItem(atPath: path)
                defer { try? FileManager.default.removeItem(atPath: path) }
                let (entries, batches, elapsed) = switch store {
                case "LogStore": try measureLogStore(path: path, batchSize: batchSize)
                case "append": try measureAppend(path: path, batchSize: batchSize)
                default: try measureRaw(path: path, batchSize: batchSize)
                }
                let rate = Double(entries) / elapsed
                print("\(pad(batchSize, 5))  \(pad(size, 5))  \(store.padding(toLength: 9, withPad: " ", startingAt: 0))  \(pad(Int(rate), 12))  \(pad(Int(Double(batches) / elapsed), 10))")
            }
        }
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }

    private func measureLogStore(path: String, batchSize: Int) throws -> (Int, Int, Double) {
        let log = try LogStore(directory: path)
        let payload = [UInt8](repeating: 0xAB, count: size)
        return try batches(of: batchSize) { first in
            try log.append((first..<(first + UInt64(batchSize))).map { LogEntry(index: $0, term: 1, payload: payload) })
        }
    }

    /// Commits one batch after another for `seconds`; `commit` is given the batch's first
    /// index. Returns the entries and batches committed and the seconds they took.
    private func batches(of batchSize: Int, _ commit: (UInt64) throws -> Void) rethrows -> (Int, Int, Double) {
        var next: UInt64 = 1
        var batches = 0
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        while clock.now < deadline {
            try commit(next)
            next += UInt64(batchSize)
            batches += 1
        }
        return (Int(next - 1), batches, seconds(clock.now - start))
    }

    private func measureRaw(path: String, batchSize: Int) throws -> (Int, Int, Double) {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var env: OpaquePointer?
        precondition(mdb_env_create(&env) == 0)
        defer { mdb_env_close(env) }
        mdb_env_set_mapsize(env, 1 << 36)
        precondition(mdb_env_open(env, path, UInt32(MDB_NOTLS), 0o644) == 0)
        var dbi = MDB_dbi()
        var txn: OpaquePointer?
        mdb_txn_begin(env, nil, 0, &txn)
        mdb_dbi_open(txn, nil, 0, &dbi)
        mdb_txn_commit(txn)
        var value = [UInt8](repeating: 0xAB, count: size + 14)
        return batches(of: batchSize) { first in
            mdb_txn_begin(env, nil, 0, &txn)
            for index in first..<(first + UInt64(batchSize)) {
                var key = index.bigEndian
                withUnsafeMutableBytes(of: &key) { keyBytes in
                    value.withUnsafeMutableBytes { valueBytes in
                        var k = MDB_val(mv_size: 8, mv_data: keyBytes.baseAddress)
                        var v = MDB_val(mv_size: valueBytes.count, mv_data: valueBytes.baseAddress)
                        precondition(mdb_put(txn, dbi, &k, &v, UInt32(MDB_APPEND)) == 0)
                    }
                }
            }
            precondition(mdb_txn_commit(txn) == 0)
        }
    }

    /// A write-ahead log's commit: the batch's bytes (each entry with the 14 bytes LogStore adds)
    /// written after the last into a file preallocated and synced first, as etcd's WAL
    /// segments are, then one fdatasync.
    private func measureAppend(path: String, batchSize: Int) throws -> (Int, Int, Double) {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let file = "\(path)/segment"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ToolError("cannot create \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let segment = 1 << 30
        guard ftruncate(fd, off_t(segment)) == 0, fdatasync(fd) == 0 else { throw ToolError("cannot preallocate \(file): \(String(cString: strerror(errno)))") }
        let record = [UInt8](repeating: 0xAB, count: (size + 14) * batchSize)
        var offset = 0
        return try batches(of: batchSize) { _ in
            if offset + record.count > segment { offset = 0 }
            let written = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard written == record.count, fdatasync(fd) == 0 else { throw ToolError("cannot append to \(file): \(String(cString: strerror(errno)))") }
            offset += record.count
        }
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
