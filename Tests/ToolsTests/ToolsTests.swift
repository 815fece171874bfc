import Foundation
import LMDB
import LogStore
import Projections
import Testing

/// `chorus-tools` on data directories with a known log.
@Suite struct ToolsTests {
    @Test func statusDumpReplayAndVerifyOnAKnownLog() throws {
        try withReplicas(2) { dirs in
            var r = try tools(["status", dirs[0], "--json"])
            #expect(r.status == 0, "\(r)")
            let status = try #require(r.json)
            #expect(status["last_index"] as? Int == 6)
            #expect(status["applied_index"] as? Int == 6)
            #expect(status["commit"] as? Int == 6)
            let digest = try #require(status["digest"] as? String)

            r = try tools(["dump", dirs[0]])
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 6, "\(r)")
            #expect(lines[0].hasPrefix("1\t1\tcommand\t") && lines[0].contains("name: \"alice\""), "\(lines[0])")
            #expect(lines[5].contains("body: \"hello bob\""), "\(lines[5])")
            #expect(!r.stdout.contains("password_hash: \""), "dumps leave password hashes out")
            r = try tools(["dump", dirs[0], "--from", "5", "--to", "5", "--json"])
            let entry = try #require(r.json)
            #expect(entry["index"] as? Int == 5 && entry["kind"] as? String == "command")

            r = try tools(["replay", dirs[0]])
            #expect(r.status == 0 && r.stdout.contains("replayed 6 entries") && r.stdout.contains("digest \(digest)"), "\(r)")
            r = try tools(["replay", dirs[0], "--to", "2"])
            #expect(r.stdout.contains("to index 2") && !r.stdout.contains(digest), "\(r)")

            r = try tools(["verify", dirs[0], dirs[1]])
            #expect(r.status == 0 && r.stdout.contains("2 replicas agree"), "\(r)")
        }
    }

    @Test func verifyNamesAnAlteredProjectionRow() throws {
        try withReplicas(2) { dirs in
            // Change bob's row in the second replica's projection behind the log's back.
            do {
                let state = try ChatState(directory: StateDirectory(directory: dirs[1] + "/state").currentPath)
                let users = try state.environment.openDatabases(["users"])[0]
                try state.environment.write { txn in
                    var row = try UserRow(serializedBytes: try #require(try txn.get(users, Array("bob".utf8))))
                    row.createdMs = 42
                    try txn.put(users, Array("bob".utf8), try row.serializedBytes())
                }
                try state.sync()
            }
            let r = try tools(["verify", dirs[0], dirs[1]])
            #expect(r.status == 1, "\(r)")
            #expect(r.stdout.contains("table users") && r.stdout.contains("bob"), "\(r)")
            #expect(r.stdout.contains("created_ms: 42"), "\(r)")
        }
    }

    @Test func verifyFindsLogsThatDisagree() throws {
        try withReplicas(2) { dirs in
            let log = try LogStore(directory: dirs[1] + "/log")
            var entry = try #require(try log.entry(at: 6))
            entry.payload = try command(6, .sendMessage(.with { $0.tokenHash = tokenHash("alice"); $0.recipient = "bob"; $0.body = "forged" }))
            try log.append([entry])
            let r = try tools(["verify", dirs[0], dirs[1]])
            #expect(r.status == 1 && r.stdout.contains("differs") && r.stdout.contains("index 6"), "\(r)")
        }
    }
}

extension ToolsTests {
    @Test func compactSnapshotsDiscardsTheLogAndReplayStartsFromTheSnapshot() throws {
        try withReplicas(2) { dirs in
            let before = try #require(try tools(["status", dirs[0], "--json"]).json)
            var r = try tools(["compact", dirs[0], "--keep", "2"])
            #expect(r.status == 0 && r.stdout.contains("snapshot at index 6") && r.stdout.contains("5...6"), "\(r)")
            let after = try #require(try tools(["status", dirs[0], "--json"]).json)
            #expect(after["snapshot_index"] as? Int == 6 && after["snapshot_term"] as? Int == 1)
            #expect(after["first_index"] as? Int == 5 && after["last_index"] as? Int == 6 && after["entries"] as? Int == 2)
            #expect(after["digest"] as? String == before["digest"] as? String, "compaction leaves the projections as they were")

            r = try tools(["replay", dirs[0]])
            #expect(r.status == 0 && r.stdout.contains("started from the snapshot at index 6") && r.stdout.contains("digest \(before["digest"] as? String ?? "?")"), "\(r)")
            r = try tools(["replay", dirs[0], "--to", "2"])
            #expect(r.status != 0 && r.stderr.contains("compacted past it"), "\(r)")
            // Verify pairs a compacted replica with one that holds its whole log.
            r = try tools(["verify", dirs[0], dirs[1]])
            #expect(r.status == 0 && r.stdout.contains("2 replicas agree"), "\(r)")
            // A second compaction has nothing new to cover, and changes nothing.
            r = try tools(["compact", dirs[0]])
            #expect(r.status == 0, "\(r)")
            #expect(try tools(["status", dirs[0], "--json"]).json?["digest"] as? String == before["digest"] as? String)
        }
    }

    @Test func compactRefusesADirectoryInUse() throws {
        try withReplicas(1) { dirs in
            let fd = open(dirs[0] + "/lock", O_RDWR | O_CREAT, 0o644)
            defer { close(fd) }
            #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
            let r = try tools(["compact", dirs[0]])
            #expect(r.status != 0 && r.stderr.contains("in use by a running node"), "\(r)")
        }
    }
}

extension ToolsTests {
    /// After an unclean stop the projections may be torn yet look sound; compact would make a
    /// snapshot of them the node's truth. It refuses until the node has rebuilt them.
    @Test func compactRefusesADirectoryWhoseLastRunDidNotStopCleanly() throws {
        try withReplicas(1) { dirs in
            let before = try #require(try tools(["status", dirs[0], "--json"]).json)
            for boot in ["another-boot", UncleanStop.bootID] {
                try FileSystem.writeAtomically(Array("boot=\(boot)\n".utf8), to: dirs[0] + "/running")
                let r = try tools(["compact", dirs[0]])
                #expect(r.status == 1, "\(r)")
                #expect(r.stderr.contains("did not stop cleanly: its projections may be damaged. Start the node once"), "\(r)")
                let after = try #require(try tools(["status", dirs[0], "--json"]).json)
                #expect(after["snapshot_index"] as? Int == 0 && after["first_index"] as? Int == 1, "nothing was compacted")
                #expect(after["digest"] as? String == before["digest"] as? String)
            }
            try UncleanStop.markStopped(dirs[0])
            #expect(try tools(["compact", dirs[0]]).status == 0)
        }
    }

    /// A crash between any two steps of compact leaves a directory that holds everything it
    /// held, and a later compact finishes the work.
    @Test(arguments: ["compact-snapshot-taken", "compact-log-compacted", "compact-copied"])
    func compactSurvivesACrashAtEveryStep(point: String) throws {
        try withReplicas(1) { dirs in
            let before = try #require(try tools(["status", dirs[0], "--json"]).json)
            let digest = try #require(before["digest"] as? String)
            var r = try tools(["compact", dirs[0]], environment: ["CHORUS_CRASH_AT": point])
            #expect(r.status != 0 && r.stderr.contains("crash point '\(point)' reached"), "\(r)")
            r = try tools(["replay", dirs[0]])
            #expect(r.status == 0 && r.stdout.contains("digest \(digest)"), "after a crash at \(point): \(r)")
            // Killed midway, compact leaves the directory marked as a killed node's: refused
            // until the node has started (and checked the projections) and stopped cleanly.
            r = try tools(["compact", dirs[0]])
            #expect(r.status == 1 && r.stderr.contains("was killed and did not stop cleanly"), "\(r)")
            try UncleanStop.markStopped(dirs[0])
            r = try tools(["compact", dirs[0]])
            #expect(r.status == 0 && r.stdout.contains("snapshot at index 6"), "\(r)")
            let after = try #require(try tools(["status", dirs[0], "--json"]).json)
            #expect(after["snapshot_index"] as? Int == 6 && after["digest"] as? String == digest, "\(after)")
            #expect(!FileManager.default.fileExists(atPath: dirs[0] + "/log.compacting"))
        }
    }

    /// What the tools write is readable by the node's user only.
    @Test func compactedFilesArePrivate() throws {
        try withReplicas(1) { dirs in
            #expect(try tools(["compact", dirs[0]]).status == 0)
            let snapshots = try FileManager.default.contentsOfDirectory(atPath: dirs[0] + "/snapshots").filter { $0 != "incoming" }
            #expect(snapshots.count == 1)
            for path in [dirs[0] + "/log/data.mdb", dirs[0] + "/snapshots/" + snapshots[0] + "/data.mdb", dirs[0] + "/snapshots/" + snapshots[0]] {
                #expect(FileSystem.sharedBits(path) == 0, "\(path) is mode \(String(FileSystem.sharedBits(path) ?? 0o777, radix: 8)) for others")
            }
        }
    }
}

// MARK: Helpers

/// `count` identical replicas of a six-entry log, each with its projections applied.
func withReplicas(_ count: Int, _ body: ([String]) throws -> Void) throws {
    let root = NSTemporaryDirectory() + "chorus-tools-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: root) }
    let commands: [[UInt8]] = try [
        command(1, .createAccount(.with { $0.name = "alice"; $0.salt = Data([1]); $0.iterations = 1; $0.passwordHash = Data([9, 9, 9]) })),
        command(2, .createAccount(.with { $0.name = "bob"; $0.salt = Data([2]); $0.iterations = 1; $0.passwordHash = Data([8, 8, 8]) })),
        command(3, .openSession(.with { $0.name = "alice"; $0.tokenHash = tokenHash("alice") })),
        command(4, .openSession(.with { $0.name = "bob"; $0.tokenHash = tokenHash("bob") })),
        command(5, .sendMessage(.with { $0.tokenHash = tokenHash("bob"); $0.recipient = "alice"; $0.body = "hello alice" })),
        command(6, .sendMessage(.with { $0.tokenHash = tokenHash("alice"); $0.recipient = "bob"; $0.body = "hello bob" })),
    ]
    var dirs: [String] = []
    for n in 0..<count {
        let dir = "\(root)/node-\(n)"
        let log = try LogStore(directory: dir + "/log")
        try log.save(hardState: StoredHardState(term: 1, vote: 1, commit: 6), entries: commands.enumerated().map {
            LogEntry(index: UInt64($0.offset + 1), term: 1, kind: 0, payload: $0.element)
        })
        let state = try StateDirectory(directory: dir + "/state").open()
        _ = try state.apply(commands.enumerated().map { CommittedEntry(index: UInt64($0.offset + 1), term: 1, command: $0.element) })
        try state.sync()
        dirs.append(dir)
    }
    try body(dirs)
}

func tokenHash(_ user: String) -> Data {
    Data(Credentials.tokenHash(Array("token-\(user)".utf8)))
}

func command(_ sequence: UInt64, _ kind: Command.OneOf_Kind) throws -> [UInt8] {
    var command = Command()
    command.version = ChatState.commandVersion
    command.clientID = "tools-test"
    command.sequence = sequence
    command.timestampMs = 1_700_000_000_000 + Int64(sequence)
    command.kind = kind
    return try command.serializedBytes()
}

struct ToolResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] }
    var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

func tools(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolResult {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var executable: URL?
    while url.pathComponents.count > 1, executable == nil {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("chorus-tools")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { executable = candidate }
    }
    let process = Process()
    process.executableURL = executable ?? URL(fileURLWithPath: ".build/debug/chorus-tools")
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ToolResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
}
