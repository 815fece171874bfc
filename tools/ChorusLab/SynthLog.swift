import ArgumentParser
import Foundation
import LogStore
import Projections
import ToolSupport

/// Writes a realistic log for benchmarks of replay and catch-up: accounts, their sessions,
/// then sends between random pairs with 64-byte bodies.
struct SynthLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth-log",
        abstract: "Write a synthetic chat log (for replay benchmarks) into a new data directory."
    )

    @Option(help: "The data directory to create.") var dir: String
    @Option(help: "Entries in all.") var entries: Int = 1_000_000
    @Option(help: "Accounts.") var users: Int = 1000

    func run() throws {
        guard !FileManager.default.fileExists(atPath: dir + "/log/data.mdb") else {
            throw ValidationError("\(dir) already holds a log")
        }
        let log = try LogStore(directory: dir + "/log")
        var random = SystemRandomNumberGenerator()
        let tokens = (0..<users).map { Data(Credentials.tokenHash(Array("synthetic-\($0)".utf8))) }
        let body = String(repeating: "m", count: 64)
        var batch: [LogEntry] = []
        var index: UInt64 = 0
        func add(_ kind: Command.OneOf_Kind) throws {
            index += 1
            var command = Command()
            command.version = ChatState.commandVersion
            command.clientID = "synth"
            command.sequence = index
            // As the client library does: one request in flight, everything before it answered.
            command.firstOutstanding = index
            command.timestampMs = 1_700_000_000_000 + Int64(index)
            command.kind = kind
            batch.append(LogEntry(index: index, term: 1, kind: 0, payload: try command.serializedBytes()))
            if batch.count == 4096 {
                try log.append(batch)
                batch = []
            }
        }
        let progress = ProgressBar("synth", total: entries)
        for user in 0..<users where Int(index) < entries {
            try add(.createAccount(.with { $0.name = "user\(user)"; $0.salt = Data([1]); $0.iterations = 1; $0.passwordHash = Data(repeating: 7, count: 32) }))
        }
        for user in 0..<users where Int(index) < entries {
            try add(.openSession(.with { $0.name = "user\(user)"; $0.tokenHash = tokens[user] }))
        }
        while Int(index) < entries {
            let from = Int.random(in: 0..<users, using: &random)
            let to = Int.random(in: 0..<users, using: &random)
            try add(.sendMessage(.with { $0.tokenHash = tokens[from]; $0.recipient = "user\(to)"; $0.body = body }))
            if index % 8192 == 0 { progress.update(Int(index)) }
        }
        if !batch.isEmpty { try log.append(batch) }
        try log.setHardState(StoredHardState(term: 1, vote: 1, commit: index))
        progress.finish()
        print("wrote \(index) entries to \(dir)/log")
    }
}
