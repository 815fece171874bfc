import Foundation
import Testing

/// The `chorus` binary against a real cluster: output, `--json`, exit codes, and the
/// interactive mode through a pseudo-terminal. Part of the serialized cluster suite.
extension ClusterTests {
    @Test func oneShotCommandsPrintAndExitAsDocumented() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        let cli = CLI(endpoints: cluster.endpoints, sessionDirectory: cluster.root, ca: cluster.tls ? cluster.credentials(1).ca : nil)
        try await cluster.withClient { client in _ = try await cluster.waitForLeader(client) }

        var r = try await cli.run(["register", "alice"], stdin: "alice-pw\n", session: "alice")
        #expect(r.status == 0 && r.stdout.contains("registered and logged in as alice"), "\(r)")
        let mode = try FileManager.default.attributesOfItem(atPath: cli.sessionFile("alice"))[.posixPermissions] as? Int
        #expect(mode == 0o600, "the session file must be readable by its owner only")
        r = try await cli.run(["register", "bob", "--json"], stdin: "bob-pw\n", session: "bob")
        #expect(r.status == 0 && r.json?["registered"] as? Bool == true, "\(r)")

        r = try await cli.run(["send", "bob", "hello", "bob"], session: "alice")
        #expect(r.status == 0 && r.stdout.hasPrefix("sent #"), "\(r)")
        r = try await cli.run(["send", "bob", "second", "--json"], session: "alice")
        let secondID = r.json?["id"] as? Int
        #expect(secondID != nil, "\(r)")

        r = try await cli.run(["read", "-n", "1"], session: "bob")
        #expect(r.status == 0 && r.stdout.contains("alice → bob: hello bob") && r.stdout.contains("1 more unread"), "\(r)")
        r = try await cli.run(["read", "--json"], session: "bob")
        let messages = r.json?["messages"] as? [[String: Any]]
        #expect(messages?.map { $0["body"] as? String } == ["second"], "\(r)")

        r = try await cli.run(["history", "alice", "--json"], session: "bob")
        #expect((r.json?["messages"] as? [[String: Any]])?.count == 2, "\(r)")
        r = try await cli.run(["users", "a*"], session: "bob")
        #expect(r.status == 0 && r.stdout.contains("alice") && !r.stdout.contains("bob"), "\(r)")
        r = try await cli.run(["status", "--json"], session: "bob")
        let nodes = r.json?["nodes"] as? [[String: Any]]
        #expect(nodes?.filter { $0["role"] as? String == "leader" }.count == 1, "\(r)")
        let members = r.json?["members"] as? [[String: Any]]
        #expect(members?.count == 3 && members?.filter { $0["role"] as? String == "voter" }.count == 2, "\(r)")
        r = try await cli.run(["status"], session: "bob")
        #expect(r.stdout.contains("ROLE") && r.stdout.contains("leader"), "\(r)")
        #expect(r.stdout.contains("members (node ") && r.stdout.contains(" behind)"), "\(r)")

        // Error paths: each with its exit code and a message for a person.
        r = try await cli.run(["send", "nobody", "hi"], session: "alice")
        #expect(r.status == 3 && r.stderr.contains("no account named 'nobody'"), "\(r)")
        r = try await cli.run(["send", "nobody", "hi", "--json"], session: "alice")
        #expect(r.status == 3 && r.stderr.contains("\"error\":\"not_found\""), "\(r)")
        r = try await cli.run(["login", "alice"], stdin: "wrong\n", session: "mallory")
        #expect(r.status == 5 && r.stderr.contains("wrong password"), "\(r)")
        r = try await cli.run(["register", "alice"], stdin: "x\n", session: "mallory")
        #expect(r.status == 4, "\(r)")
        r = try await cli.run(["register", "bad name"], stdin: "x\n", session: "mallory")
        #expect(r.status == 2 && r.stderr.contains("may only hold"), "\(r)")
        r = try await cli.run(["read"], session: "nobody-logged-in")
        #expect(r.status == 2 && r.stderr.contains("not logged in"), "\(r)")
        r = try await cli.run(["delete", "\(secondID ?? 0)"], session: "alice")
        #expect(r.status == 0 && r.stdout.contains("deleted 1 message"), "\(r)")
        r = try await cli.run(["read", "--endpoints", "127.0.0.1:9", "--timeout", "1"], session: "alice")
        #expect(r.status == 7 && r.stderr.contains("hint: is the cluster running?"), "\(r)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack"), "no stack traces")

        r = try await cli.run(["delete-account"], stdin: "bob-pw\n", session: "bob")
        #expect(r.status == 0 && r.stdout.contains("deleted account bob"), "\(r)")
        r = try await cli.run(["logout"], session: "alice")
        #expect(r.status == 0 && !FileManager.default.fileExists(atPath: cli.sessionFile("alice")), "\(r)")

        // Without CHORUS_SESSION_FILE the session lives under $XDG_CONFIG_HOME, else $HOME/.config,
        // whatever the password database says the user's home is.
        let home = cluster.root + "/home-carol"
        let byHome: [String: String?] = ["CHORUS_SESSION_FILE": nil, "XDG_CONFIG_HOME": nil, "HOME": home]
        r = try await cli.run(["register", "carol"], stdin: "carol-pw\n", session: "unused", changing: byHome)
        #expect(r.status == 0 && FileManager.default.fileExists(atPath: home + "/.config/chorus/session.json"), "\(r)")
        r = try await cli.run(["read", "--json"], session: "unused", changing: byHome)
        #expect(r.status == 0 && (r.json?["messages"] as? [[String: Any]])?.isEmpty == true, "\(r)")
        let xdg = cluster.root + "/xdg-carol"
        r = try await cli.run(["login", "carol"], stdin: "carol-pw\n", session: "unused", changing: byHome.merging(["XDG_CONFIG_HOME": xdg]) { $1 })
        #expect(r.status == 0 && FileManager.default.fileExists(atPath: xdg + "/chorus/session.json"), "\(r)")
    }

    @Test func interactiveChatThroughAPseudoTerminalSurvivesALeaderKill() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        let cli = CLI(endpoints: cluster.endpoints, sessionDirectory: cluster.root, ca: cluster.tls ? cluster.credentials(1).ca : nil)
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            try await client.createAccount(name: "alice", password: "a")
        }
        let terminal = try PseudoTerminal(executable: CLI.executable, arguments: ["chat"], environment: cli.environment(session: "carol"))
        defer { terminal.close() }
        try terminal.expect("name: ")
        terminal.send("carol")
        try terminal.expect("register it? [y/N]")
        terminal.send("y")
        try terminal.expect("new password: ")
        terminal.send("carol-pw")
        try terminal.expect("logged in as carol; 0 unread")
        #expect(!terminal.output.contains("carol-pw"), "the password was echoed")

        // Live delivery, and sending from the prompt.
        var r = try await cli.run(["login", "alice"], stdin: "a\n", session: "alice")
        #expect(r.status == 0)
        r = try await cli.run(["send", "carol", "live", "one"], session: "alice")
        try terminal.expect("← alice: live one")
        terminal.send("@alice hi back")
        try terminal.expect("→ alice")
        r = try await cli.run(["read", "--json"], session: "alice")
        #expect((r.json?["messages"] as? [[String: Any]])?.first?["body"] as? String == "hi back", "\(r)")

        // Kill the leader mid-session: the feed fails over and nothing is lost.
        let leader = try await cluster.withClient { try await cluster.waitForLeader($0) }
        cluster.kill(leader)
        r = try await cli.run(["send", "carol", "after", "the", "kill"], session: "alice")
        #expect(r.status == 0, "\(r)")
        try terminal.expect("← alice: after the kill", timeout: .seconds(30))
        #expect(terminal.output.contains("failing over"))

        // Reading in batches from the prompt.
        for n in 0..<3 { _ = try await cli.run(["send", "carol", "queued-\(n)"], session: "alice") }
        try terminal.expect("← alice: queued-2")
        terminal.send("/read 2")
        try terminal.expect("no new messages")
        terminal.send("/history alice 3")
        try terminal.expect("alice → carol: queued-2")
        terminal.send("/quit")
        try terminal.waitForExit()
    }
}

/// Runs the `chorus` binary with a session file of its own per user.
struct CLI {
    var endpoints: [String]
    var sessionDirectory: String
    /// The cluster's CA, when it runs with TLS.
    var ca: String? = nil

    struct Result: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
        }
        var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    static var executable: URL {
        TestCluster.executable.deletingLastPathComponent().appendingPathComponent("chorus")
    }

    func sessionFile(_ user: String) -> String { "\(sessionDirectory)/session-\(user).json" }

    func environment(session user: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CHORUS_ENDPOINTS"] = endpoints.joined(separator: ",")
        environment["CHORUS_SESSION_FILE"] = sessionFile(user)
        environment["CHORUS_CA"] = ca
        return environment
    }

    /// Runs `chorus`; `changing` sets (or, with nil, removes) variables of its environment.
    func run(_ arguments: [String], stdin: String = "", session user: String, changing changes: [String: String?] = [:]) async throws -> Result {
        var environment = environment(session: user)
        for (name, value) in changes { environment[name] = value }
        return try await offThePool { [environment] in try Self.run(arguments, stdin: stdin, environment: environment) }
    }

    private static func run(_ arguments: [String], stdin: String, environment: [String: String]) throws -> Result {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        process.environment = environment
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }
}

/// A child process on a pseudo-terminal, driven like a person at a keyboard.
final class PseudoTerminal: @unchecked Sendable {
    let process = Process()
    let master: Int32
    private let lock = NSLock()
    private var buffer = ""
    private var reader: Thread?

    init(executable: URL, arguments: [String], environment: [String: String]) throws {
        // Linux's pseudo-terminal multiplexer; the ioctls unlock the pair and name the slave
        // (Glibc hides posix_openpt and friends from Swift).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0
        var number: UInt32 = 0
        let setLock: UInt = 0x4004_5431, getNumber: UInt = 0x8004_5430
        guard master >= 0, ioctl(master, setLock, &unlock) == 0, ioctl(master, getNumber, &number) == 0 else {
            throw TestFailure("cannot open a pseudo-terminal")
        }
        let name = "/dev/pts/\(number)"
        let slave = open(name, O_RDWR)
        guard slave >= 0 else { throw TestFailure("cannot open \(name)") }
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardInput = handle
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let fd = master
        let thread = Thread { [weak self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                self?.append(String(decoding: chunk[0..<n], as: UTF8.self))
            }
        }
        thread.start()
        reader = thread
    }

    private func append(_ text: String) {
        lock.withLock { buffer += text }
    }

    var output: String { lock.withLock { buffer } }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    /// Waits until `text` has appeared on the screen.
    func expect(_ text: String, timeout: Duration = .seconds(15)) throws {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            if output.contains(text) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestFailure("'\(text)' did not appear; the terminal shows:\n\(output)")
    }

    func waitForExit(timeout: Duration = .seconds(10)) throws {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while process.isRunning && clock.now < end { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { throw TestFailure("the client did not exit") }
    }

    func close() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        Foundation.close(master)
    }
}

/// `chorus-node local-cluster --restart`: a node killed with SIGKILL is started again, its log
/// appended to (the killed run's lines stay), and Ctrl-C (SIGTERM here) stops every node.
extension ClusterTests {
    @Test func localClusterRestartsANodeThatDies() async throws {
        let root = NSTemporaryDirectory() + "chorus-local-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let host = "127.\(Int.random(in: 1...250)).\(Int.random(in: 1...250)).1"
        let terminal = try PseudoTerminal(executable: TestCluster.executable,
                                          arguments: ["local-cluster", "--nodes", "3", "--host", host, "--base-port", "27801", "--data-dir", root, "--insecure", "--restart"],
                                          environment: ProcessInfo.processInfo.environment)
        defer { terminal.close() }
        try terminal.expect("leader: node ", timeout: .seconds(30))
        let line = try #require(terminal.output.split(whereSeparator: \.isNewline).first { $0.hasPrefix("node 2: ") })
        let pid = try #require(line.range(of: "(pid ").flatMap { Int32(line[$0.upperBound...].prefix { $0.isNumber }) })
        #expect(kill(pid, SIGKILL) == 0)
        try terminal.expect("node 2 died (signal 9); restarted it (pid ", timeout: .seconds(15))
        let restarted = try #require(terminal.output.split(whereSeparator: \.isNewline).first { $0.hasPrefix("node 2 died") })
        let newPID = try #require(restarted.range(of: "(pid ").flatMap { Int32(restarted[$0.upperBound...].prefix { $0.isNumber }) })
        // The log holds both runs: the killed one's start and the new one's.
        let clock = ContinuousClock()
        let end = clock.now + .seconds(15)
        var starts = 0
        while clock.now < end {
            let log = (try? String(contentsOfFile: root + "/node-2.log", encoding: .utf8)) ?? ""
            starts = log.components(separatedBy: "node 2 of cluster 'local' starting on").count - 1
            if starts == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(starts == 2)
        terminal.process.terminate()
        try terminal.expect("all nodes stopped", timeout: .seconds(20))
        try terminal.waitForExit(timeout: .seconds(10))
        // No node outlives the command.
        #expect(kill(newPID, 0) != 0)
    }
}
