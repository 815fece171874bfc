import ArgumentParser
import CLMDB
import Foundation
import LogStore

/// Measures `LogStore.append` against raw LMDB puts of the same bytes with the same commit
/// pattern (one fsynced transaction per batch), so the store's own overhead is visible.
struct LogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-log",
        abstract: "Log append throughput: LogStore next to raw LMDB, per batch size."
    )

    @Option(help: "Directory for scratch environments (removed afterwards).") var dir: String = NSTemporaryDirectory() + "chorus-bench-log"
    @Option(parsing: .upToNextOption, help: "Batch sizes to measure.") var batch: [Int] = [1, 64, 1024]
    @Option(help: "Payload bytes per entry.") var size: Int = 256
    @Option(help: "Seconds per measurement.") var seconds: Double = 3

    func run() throws {
        print("batch  entry  store        entries/s   batches/s")
        for batchSize in batch {
            for store in ["raw-lmdb", "LogStore"] {
                let path = "\(dir)/\(store)-\(batchSize)"
                try? FileManager.default.removeItem(atPath: path)
                defer { try? FileManager.default.removeItem(atPath: path) }
                let (entries, batches, elapsed) = try store == "LogStore"
                    ? measureLogStore(path: path, batchSize: batchSize)
                    : measureRaw(path: path, batchSize: batchSize)
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
        var next: UInt64 = 1
        var batches = 0
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        while clock.now < deadline {
            let entries = (next..<(next + UInt64(batchSize))).map { LogEntry(index: $0, term: 1, payload: payload) }
            try log.append(entries)
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
        var next: UInt64 = 1
        var batches = 0
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        while clock.now < deadline {
            mdb_txn_begin(env, nil, 0, &txn)
            for index in next..<(next + UInt64(batchSize)) {
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
            next += UInt64(batchSize)
            batches += 1
        }
        return (Int(next - 1), batches, seconds(clock.now - start))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
