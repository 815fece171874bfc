import Client
import ClusterPKI
import Foundation
import NIOExecutor
import NIOPosix
import Testing

/// Real `chorus-node` processes on a loopback address of their own (127.x.y.1), so parallel
/// test runs never share a port. Every process it starts it kills, and its data directory
/// goes with it.
final class TestCluster: @unchecked Sendable {
    let size: Int
    let host: String
    let basePort = 27001
    let root: String
    private(set) var processes: [Int: Process] = [:]
    let lock = NSLock()
    /// Added to every node's command line (snapshot settings, say).
    var extraArguments: [String] = []
    /// The nodes that bootstrap the cluster (all by default); the others start with `--join`
    /// and wait to be added (their certificates exist from the start).
    var founders: [Int]?
    /// Whether each node serves /metrics, /healthz and /readyz (on port + 200).
    var metrics = false
    /// Whether the nodes run with TLS: certificates from `chorus-tools certs local`, peers on
    /// listeners of their own (port + 100) with mutual TLS.
    let tls: Bool

    init(size: Int = 5, tls: Bool = true) throws {
        self.size = size
        self.tls = tls
        host = "127.\(Int.random(in: 1...254)).\(Int.random(in: 1...254)).1"
        root = NSTemporaryDirectory() + "chorus-cluster-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if tls {
            let made = try runTool(["certs", "local", "--dir", certificates, "--cluster", "test", "--nodes", "\(size)", "--host", host])
            guard made.status == 0 else { throw TestFailure("chorus-tools certs local failed: \(made.output)") }
        }
    }

    var certificates: String { "\(root)/certs" }
    func metricsAddress(_ id: Int) -> String { "\(host):\(basePort + 200 + id - 1)" }
    func peerAddress(_ id: Int) -> String { tls ? "\(host):\(basePort + 100 + id - 1)" : address(id) }
    /// The files of node `id`, or of operator `admin` (id 0).
    func credentials(_ id: Int) -> TLSFiles {
        id == 0 ? CertificateDirectory(certificates).operator("admin") : CertificateDirectory(certificates).node(UInt64(id))
    }
    /// What the Admin API asks for: operator `admin`'s files with TLS, nothing without.
    var operatorCredentials: TLSFiles? { tls ? credentials(0) : nil }
    var security: ClientSecurity { tls ? .tls(ca: "\(certificates)/ca.pem") : .plaintext }

    deinit {
        for process in processes.values where process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if ProcessInfo.processInfo.environment["CHORUS_KEEP_TEST_DATA"] != nil {
            print("test cluster data and logs kept in \(root)")
        } else {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    var ids: [Int] { Array(1...size) }
    func address(_ id: Int) -> String { "\(host):\(basePort + id - 1)" }
    var endpoints: [String] { ids.map(address) }
    func dataDirectory(_ id: Int) -> String { "\(root)/node-\(id)" }

    static var executable: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("chorus-node")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/chorus-node")
    }

    func arguments(_ id: Int) -> [String] {
        var arguments = ["run", "--id", "\(id)", "--listen", address(id), "--data-dir", dataDirectory(id),
                         "--cluster-id", "test", "--password-iterations", "1000", "--election-ticks", "30", "--log-level", ProcessInfo.processInfo.environment["CHORUS_TEST_LOG_LEVEL"] ?? "info"]
        if tls {
            let files = credentials(id)
            arguments += ["--peer-listen", peerAddress(id), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
            for peer in peers(of: id) { arguments += ["--peer", "\(peer)=\(peerAddress(peer)),\(address(peer))"] }
        } else {
            arguments.append("--insecure")
            for peer in peers(of: id) { arguments += ["--peer", "\(peer)=\(address(peer))"] }
        }
        if let founders, !founders.contains(id) { arguments.append("--join") }
        if metrics { arguments += ["--metrics-listen", metricsAddress(id)] }
        return arguments + extraArguments
    }

    /// Whom node `id`'s `--peer` flags name: the founders, and itself when it joins later.
    func peers(of id: Int) -> [Int] {
        guard let founders else { return ids }
        return founders.contains(id) ? founders : founders + [id]
    }

    /// Starts node `id`; `environment` adds variables (crash points, test hooks).
    func start(_ id: Int, environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments(id)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let log = "\(root)/node-\(id).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { processes[id] = process }
    }

    func startAll() throws {
        for id in founders ?? ids { try start(id) }
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    func kill(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Sends `number` to node `id` (SIGHUP, say) without waiting for anything.
    func signal(_ id: Int, _ number: Int32) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, number)
    }

    /// SIGTERM and wait: a graceful stop.
    func stop(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// SIGTERM to every node at once, then wait for all.
    func stopAll() {
        let running = lock.withLock { processes.values.filter(\.isRunning) }
        for process in running { process.terminate() }
        for process in running { process.waitUntilExit() }
    }

    /// Waits for node `id` to exit on its own; returns whether a signal ended it.
    func waitForExit(_ id: Int, within: Duration) async throws -> (signaled: Bool, status: Int32) {
        let clock = ContinuousClock()
        let end = clock.now + within
        guard let process = lock.withLock({ processes[id] }) else { throw TestFailure("node \(id) was never started") }
        while process.isRunning {
            guard clock.now < end else { throw TestFailure("node \(id) still runs after \(within)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (process.terminationReason == .uncaughtSignal, process.terminationStatus)
    }

    func isRunning(_ id: Int) -> Bool { lock.withLock { processes[id]?.isRunning ?? false } }

    /// Node `id`'s resident memory in bytes, from /proc.
    func residentBytes(_ id: Int) -> Int? {
        guard let pid = lock.withLock({ processes[id]?.processIdentifier }),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    func log(_ id: Int) -> String {
        (try? String(contentsOfFile: "\(root)/node-\(id).log", encoding: .utf8)) ?? ""
    }

    /// Runs `body` with a client of the whole cluster, on a thread of its own. The cooperative
    /// pool is shared with the unit suites, whose long synchronous tests hold both of its
    /// threads for seconds at a time: a client waiting there for its turn saw no leader for 30 s
    /// while the nodes had elected one in under a second.
    func withClient<R: Sendable>(deadline: Duration = .seconds(15), _ body: (ChorusClient) async throws -> R) async throws -> R {
        try await withTaskExecutorPreference(Self.clientExecutor) {
            try await withChorusClient(endpoints: endpoints, deadline: deadline, security: security, body)
        }
    }

    static let clientExecutor = EventLoopExecutor(MultiThreadedEventLoopGroup(numberOfThreads: 1).next())

    /// Waits until one running node reports itself leader and the others agree; returns its id.
    /// The bound is generous: the first cluster test starts while the CPU-heavy unit suites
    /// still load both cores.
    func waitForLeader(_ client: ChorusClient, within: Duration = .seconds(30), excluding: Set<Int> = []) async throws -> Int {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            let statuses = await client.status()
            let leaders = statuses.compactMap(\.status).filter { $0.role == "leader" && !excluding.contains(Int($0.nodeID)) }
            if let leader = leaders.max(by: { $0.term < $1.term }) {
                return Int(leader.nodeID)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("no leader within \(within)")
    }

    /// Waits until every running node applied at least the leader's commit index.
    func waitForConvergence(_ client: ChorusClient, within: Duration = .seconds(20)) async throws {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            let statuses = await client.status().compactMap(\.status)
            if let leader = statuses.first(where: { $0.role == "leader" }),
               statuses.count == ids.filter(isRunning).count,
               statuses.allSatisfy({ $0.appliedIndex >= leader.commitIndex })
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("nodes did not converge within \(within)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ChorusClient {
    /// Registers and logs in a user; returns the session token.
    func newUser(_ name: String, password: String = "pw-\(UUID().uuidString.prefix(6))") async throws -> String {
        try await createAccount(name: name, password: password)
        return try await login(name: name, password: password).token
    }
}
