import Client
import ClusterPKI
import Foundation
import Launcher
import NIOExecutor
import NIOPosix
import Testing

/// A cluster on a loopback address of its own (127.x.y.1), so parallel tests never share a
/// port: real `chorus-node` processes, or nodes inside the test process (`Placement`). Every
/// node it starts it stops, and its data directory goes with it.
final class TestCluster: @unchecked Sendable {
    /// Where the nodes run. Processes are for what needs them: SIGKILL, signals, crash
    /// points and injected disk faults, exit statuses, resident memory, file modes (the
    /// binary sets its umask). Everything else runs in this process, at a fraction of the
    /// cost of starting one.
    enum Placement {
        case processes
        case inProcess
    }

    let size: Int
    let host: String
    let basePort = 27001
    let root: String
    let placement: Placement
    let processes = NodeProcesses()
    let inProcess = InProcessNodes()
    /// Added to every node's command line (snapshot settings, say).
    var extraArguments: [String] = []
    /// The nodes that bootstrap the cluster (all by default); the others start with `--join`
    /// and wait to be added (their certificates exist from the start).
    var founders: [Int]?
    /// `--cluster-id`: "test", or "test~INCARNATION" for members of a recovered cluster.
    var clusterName = "test"
    /// Whether each node serves /metrics, /healthz and /readyz (on port + 200).
    var metrics = false
    /// Whether the nodes run with TLS: certificates from `chorus-tools certs local`, peers on
    /// listeners of their own (port + 100) with mutual TLS.
    let tls: Bool

    init(size: Int = 5, tls: Bool = true, placement: Placement = .processes) throws {
        self.size = size
        self.tls = tls
        self.placement = placement
        host = "127.\(Int.random(in: 1...254)).\(Int.random(in: 1...254)).1"
        root = NSTemporaryDirectory() + "chorus-cluster-" + UUID().uuidString
        if placement == .inProcess {
            // Its nodes are stopped and its files removed when the test ends.
            guard let clusters = InProcessClusters.current else {
                throw TestFailure("a cluster in the test process needs its test (or suite) to have the .inProcessClusters trait, which stops its nodes when the test ends")
            }
            clusters.add(inProcess, root: root)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        // What `chorus-tools certs local` makes, made here: a process per cluster is time.
        if tls { try CertificateDirectory(certificates).ensureLocal(cluster: "test", nodes: size, hosts: [host]) }
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
        processes.stopAll(with: SIGKILL)
        let keep = ProcessInfo.processInfo.environment["CHORUS_KEEP_TEST_DATA"] != nil
        if keep { print("test cluster data and logs kept in \(root)") }
        // Nodes in the test process, and their files, end with the test
        // (`StopsInProcessClusters`).
        if placement == .processes, !keep { try? FileManager.default.removeItem(atPath: root) }
    }

    var ids: [Int] { Array(1...size) }
    func address(_ id: Int) -> String { "\(host):\(basePort + id - 1)" }
    var endpoints: [String] { ids.map(address) }
    func dataDirectory(_ id: Int) -> String { "\(root)/node-\(id)" }

    static var executable: URL { URL(fileURLWithPath: NodeBinary.beside()) }

    func command(_ id: Int) -> NodeCommand {
        var command = NodeCommand(id: UInt64(id), cluster: clusterName, listen: address(id), peerListen: tls ? peerAddress(id) : nil,
                                  dataDirectory: dataDirectory(id), tls: tls ? credentials(id) : nil,
                                  members: peers(of: id).map { NodeCommand.Member(id: UInt64($0), peer: peerAddress($0), client: address($0)) })
        command.join = founders.map { !$0.contains(id) } ?? false
        command.metricsListen = metrics ? metricsAddress(id) : nil
        command.extra = ["--password-iterations", "1000", "--election-ticks", "30", "--log-level", ProcessInfo.processInfo.environment["CHORUS_TEST_LOG_LEVEL"] ?? "info"]
            + extraArguments
        return command
    }

    /// Whom node `id`'s `--peer` flags name: the founders, and itself when it joins later.
    func peers(of id: Int) -> [Int] {
        guard let founders else { return ids }
        return founders.contains(id) ? founders : founders + [id]
    }

    /// Starts node `id`; `environment` adds variables (crash points, test hooks); `executable`
    /// another build's `chorus-node` (the rolling upgrade starts the previous release).
    func start(_ id: Int, environment: [String: String] = [:], executable: String = TestCluster.executable.path) throws {
        switch placement {
        case .processes:
            try processes.launch(id, executable: executable, arguments: command(id).arguments, environment: environment, log: "\(root)/node-\(id).log")
        case .inProcess:
            precondition(executable == Self.executable.path, "another build's node runs as a process")
            // A node here reads only the planted bugs from what it is given; crash points and
            // injected faults are read from the process's own environment, once.
            precondition(environment.keys.allSatisfy { $0.hasPrefix("CHORUS_UNSAFE_") || $0 == "CHORUS_TEST_ONE_VERSION_OLDER" },
                         "\(environment.keys.sorted()) need a node process")
            try inProcess.launch(id, arguments: command(id).arguments, environment: environment, log: "\(root)/node-\(id).log")
        }
    }

    func startAll() throws {
        for id in founders ?? ids { try start(id) }
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    func kill(_ id: Int) {
        precondition(placement == .processes, "only a process can be killed")
        processes.kill(id)
    }

    /// Sends `number` to node `id` (SIGHUP, say) without waiting for anything.
    func signal(_ id: Int, _ number: Int32) {
        precondition(placement == .processes, "only a process takes signals")
        processes.signal(id, number)
    }

    /// SIGTERM and wait: a graceful stop (`shutDown` for nodes in this process).
    func stop(_ id: Int) {
        precondition(placement == .processes, "a node in this process stops with `await shutDown(_:)`")
        processes.stop(id)
    }

    /// SIGTERM to every node at once, then wait for all. Nodes in this process are told to
    /// stop and not waited for (it serves as a `defer`; the test's end waits for them);
    /// `await shutDownAll()` waits.
    func stopAll() {
        switch placement {
        case .processes: processes.stopAll()
        case .inProcess: Task { [inProcess] in await inProcess.stopAll() }
        }
    }

    /// A graceful stop, wherever the node runs, and waits until it has ended.
    func shutDown(_ id: Int) async {
        switch placement {
        case .processes: processes.stop(id)
        case .inProcess: await inProcess.stop(id)
        }
    }

    /// Every node's graceful stop at once, and waits for all.
    func shutDownAll() async {
        switch placement {
        case .processes: processes.stopAll()
        case .inProcess: await inProcess.stopAll()
        }
    }

    /// Waits for node `id` to end on its own; returns whether a signal ended it, and its
    /// exit status (a node in this process gives the status its binary would).
    func waitForExit(_ id: Int, within: Duration) async throws -> (signaled: Bool, status: Int32) {
        switch placement {
        case .processes: try await processes.waitForExit(id, within: within)
        case .inProcess: (false, try await inProcess.waitForExit(id, within: within))
        }
    }

    func isRunning(_ id: Int) -> Bool {
        switch placement {
        case .processes: processes.isRunning(id)
        case .inProcess: inProcess.isRunning(id)
        }
    }

    /// Node `id`'s resident memory in bytes, from /proc.
    func residentBytes(_ id: Int) -> Int? {
        precondition(placement == .processes, "a node in this process has no memory of its own")
        return processes.residentBytes(id)
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
