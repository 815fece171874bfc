import ArgumentParser
import LogStore

#if canImport(Glibc)
import Glibc
#endif

/// Test helper for the crash tests: appends batches forever (or `--batches` times) and prints
/// `durable N` once the batch ending at N is fsynced. A test kills it at random and checks
/// that every reported batch survived.
struct LogWriter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log-writer",
        abstract: "Append numbered entries and report each durable batch (crash-test helper).",
        shouldDisplay: false
    )

    @Option(help: "The log directory.") var dir: String
    @Option(help: "How many batches to append.") var batches: Int = 1000
    @Option(help: "Entries per batch.") var batchSize: Int = 16

    func run() throws {
        let log = try LogStore(directory: dir)
        var next = try log.lastIndex() + 1
        for _ in 0..<batches {
            let batch = (next..<(next + UInt64(batchSize))).map {
                LogEntry(index: $0, term: 1, payload: Array("crash-test entry \($0)".utf8))
            }
            try log.append(batch)
            next += UInt64(batchSize)
            // Unbuffered, so the line is out before the next append begins.
            let line = Array("durable \(next - 1)\n".utf8)
            _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }
    }
}
