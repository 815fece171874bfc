import API
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// Starts N nodes of this very executable on loopback, each with its own data directory, and
/// reports the leader as it changes. Used by the README's quick-start command.
public struct LocalCluster: Sendable {
    public var size: Int
    public var host: String
    public var basePort: Int
    public var dataDirectory: String
    public var executable: String
    public var extraArguments: [String]
    /// Plaintext, one listener per node; otherwise TLS with certificates made (once) under
    /// `DATA/certs`, clients on the base ports and peers on base + 100.
    public var insecure: Bool
    /// Start again a node that dies (killed, or exited with an error); one that exits cleanly
    /// (stopped, or removed from the cluster) stays down.
    public var restart: Bool

    public init(size: Int, host: String, basePort: Int, dataDirectory: String, executable: String, extraArguments: [String] = [], insecure: Bool = false, restart: Bool = false) {
        self.size = size
        self.restart = restart
        self.insecure = insecure
        self.host = host
        self.basePort = basePort
        self.dataDirectory = dataDirectory
        self.executable = executable
        self.extraArguments = extraArguments
    }

    public var addresses: [(id: Int, address: String)] {
        (1...size).map { ($0, "\(host):\(basePort + $0 - 1)") }
    }

    public var certificates: CertificateDirectory { CertificateDirectory("\(dataDirectory)/certs") }

    /// Where node `id` serves /metrics, /healthz and /readyz: base + 200.
    public func metricsAddress(_ id: Int) -> String { "\(host):\(basePort + 200 + id - 1)" }

    func peerAddress(_ id: Int) -> String { insecure ? "\(host):\(basePort + id - 1)" : "\(host):\(basePort + 100 + id - 1)" }

    public func arguments(for id: Int) -> [String] {
        var arguments = ["run", "--id", "\(id)", "--listen", "\(host):\(basePort + id - 1)",
                         "--data-dir", "\(dataDirectory)/node-\(id)", "--cluster-id", "local", "--metrics-listen", metricsAddress(id)]
        if insecure {
            arguments.append("--insecure")
            for (peer, address) in addresses { arguments += ["--peer", "\(peer)=\(address)"] }
        } else {
            let files = certificates.node(UInt64(id))
            arguments += ["--peer-listen", peerAddress(id), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
            for (peer, address) in addresses { arguments += ["--peer", "\(peer)=\(peerAddress(peer)),\(address)"] }
        }
        return arguments + extraArguments
    }

    /// Runs until cancelled (Ctrl-C), then stops every node with SIGTERM.
    public func run() async throws {
        let nodes = Nodes()
        defer {
            nodes.stopAll()
            say("all nodes stopped; data kept in \(dataDirectory)")
        }
        if !insecure {
            try certificates.ensureLocal(cluster: "local", nodes: size, hosts: [host, "localhost"])
            say("TLS on: the cluster's CA is \(certificates.ca) (chorus finds it when run here with the default endpoints; elsewhere pass --ca)")
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        for (id, address) in addresses {
            let process = try launch(id)
            nodes.started(id, process)
            say("node \(id): \(address)  (pid \(process.processIdentifier), log \(log(id)), metrics http://\(metricsAddress(id))/metrics)")
        }
        say("cluster of \(size) starting; endpoints: \(addresses.map(\.address).joined(separator: ","))")
        if restart { say("a node that dies is started again (--restart)") }
        say("press Ctrl-C to stop")
        try await watchLeader(nodes: nodes)
    }

    func log(_ id: Int) -> String { "\(dataDirectory)/node-\(id).log" }

    /// Starts node `id`, its output appended to its log: a killed node's last words are evidence.
    func launch(_ id: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments(for: id)
        if !FileManager.default.fileExists(atPath: log(id)) { _ = FileManager.default.createFile(atPath: log(id), contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log(id)))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        try handle.close()
        return process
    }

    /// With `restart`, starts again each node that died, no sooner than its backoff allows:
    /// one that keeps dying right after it starts (a bad flag, a full disk) waits up to 30 s.
    func restartDead(_ nodes: Nodes) {
        let clock = ContinuousClock()
        for id in 1...size {
            guard let node = nodes[id], !node.process.isRunning else { continue }
            let died = node.process.terminationReason == .uncaughtSignal || node.process.terminationStatus != 0
            guard died, clock.now >= node.notBefore else { continue }
            let how = node.process.terminationReason == .uncaughtSignal ? "signal \(node.process.terminationStatus)" : "exit status \(node.process.terminationStatus)"
            do {
                let process = try launch(id)
                nodes.restarted(id, process, quickly: clock.now - node.started < .seconds(10))
                say("node \(id) died (\(how)); restarted it (pid \(process.processIdentifier))")
            } catch {
                say("node \(id) died (\(how)); restarting it failed: \(error)")
                nodes.restarted(id, node.process, quickly: true)
            }
        }
    }

    /// Polls every node's status and prints each change of leader or term.
    func watchLeader(nodes: Nodes) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            var clients: [(Int, Chorus_V1_Chat.Client<HTTP2ClientTransport.Posix>)] = []
            for (id, _) in addresses {
                let security: ClientSecurity = insecure ? .plaintext : .tls(ca: certificates.ca)
                let transport = try HTTP2ClientTransport.Posix(target: ClientSecurity.target(host: host, port: basePort + id - 1), transportSecurity: security.transportSecurity)
                let client = GRPCClient(transport: transport)
                group.addTask { try await client.runConnections() }
                clients.append((id, Chorus_V1_Chat.Client(wrapping: client)))
            }
            var last = ""
            while !Task.isCancelled {
                if restart { restartDead(nodes) }
                var leaders: [String] = []
                for (id, client) in clients {
                    guard nodes[id]?.process.isRunning == true else { continue }
                    let options = CallOptions.defaults.with { $0.timeout = .milliseconds(300) }
                    if let status = try? await client.clusterStatus(.init(), options: options), status.role == "leader" {
                        leaders.append("node \(status.nodeID) at \(status.leaderAddress) (term \(status.term), commit \(status.commitIndex))")
                    }
                }
                let line = leaders.isEmpty ? "no leader yet" : "leader: " + leaders.joined(separator: "; ")
                if line != last {
                    say(line)
                    last = line
                }
                if !restart && nodes.allExited {
                    say("every node exited; see the logs in \(dataDirectory)")
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            group.cancelAll()
        }
    }
}

/// The node processes of a local cluster, as started and restarted.
final class Nodes: Sendable {
    struct Node {
        var process: Process
        var started: ContinuousClock.Instant
        /// A restart waits until then.
        var notBefore: ContinuousClock.Instant
        var backoff: Duration
    }

    private let nodes = Mutex<[Int: Node]>([:])

    subscript(id: Int) -> Node? { nodes.withLock { $0[id] } }

    func started(_ id: Int, _ process: Process) {
        let now = ContinuousClock.now
        nodes.withLock { $0[id] = Node(process: process, started: now, notBefore: now, backoff: .seconds(1)) }
    }

    /// Node `id` runs as `process` now; `quickly` (it had died soon after its start) doubles
    /// the wait before the next restart, up to 30 s.
    func restarted(_ id: Int, _ process: Process, quickly: Bool) {
        let now = ContinuousClock.now
        nodes.withLock { nodes in
            let backoff = quickly ? min((nodes[id]?.backoff ?? .seconds(1)) * 2, .seconds(30)) : .seconds(1)
            nodes[id] = Node(process: process, started: now, notBefore: now + backoff, backoff: backoff)
        }
    }

    var allExited: Bool { nodes.withLock { $0.values.allSatisfy { !$0.process.isRunning } } }

    /// SIGTERM to every running node, then waits for each.
    func stopAll() {
        let processes = nodes.withLock { $0.values.map(\.process) }
        for process in processes where process.isRunning { process.terminate() }
        for process in processes { process.waitUntilExit() }
    }
}

extension CallOptions {
    func with(_ body: (inout CallOptions) -> Void) -> CallOptions {
        var copy = self
        body(&copy)
        return copy
    }
}

/// Prints a line at once, even when stdout is a pipe or a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
