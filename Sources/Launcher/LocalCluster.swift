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

    public func command(for id: Int) -> NodeCommand {
        var command = NodeCommand(
            id: UInt64(id), cluster: "local", listen: "\(host):\(basePort + id - 1)", peerListen: insecure ? nil : peerAddress(id),
            dataDirectory: "\(dataDirectory)/node-\(id)", tls: insecure ? nil : certificates.node(UInt64(id)),
            members: addresses.map { NodeCommand.Member(id: UInt64($0.id), peer: peerAddress($0.id), client: $0.address) }
        )
        command.metricsListen = metricsAddress(id)
        command.extra = extraArguments
        return command
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
            let process = try launch(id, into: nodes)
            nodes.started(id)
            say("node \(id): \(address)  (pid \(process.processIdentifier), log \(log(id)), metrics http://\(metricsAddress(id))/metrics)")
        }
        say("cluster of \(size) starting; endpoints: \(addresses.map(\.address).joined(separator: ","))")
        if restart { say("a node that dies is started again (--restart)") }
        say("press Ctrl-C to stop")
        try await watchLeader(nodes: nodes)
    }

    func log(_ id: Int) -> String { "\(dataDirectory)/node-\(id).log" }

    /// Starts node `id`, its output appended to its log.
    func launch(_ id: Int, into nodes: Nodes) throws -> Process {
        try nodes.processes.launch(id, executable: executable, arguments: command(for: id).arguments, log: log(id))
    }

    /// With `restart`, starts again each node that died, no sooner than its backoff allows:
    /// one that keeps dying right after it starts (a bad flag, a full disk) waits up to 30 s.
    func restartDead(_ nodes: Nodes) {
        let clock = ContinuousClock()
        for id in 1...size {
            guard let process = nodes.processes.process(id), !process.isRunning, let schedule = nodes[id] else { continue }
            let died = process.terminationReason == .uncaughtSignal || process.terminationStatus != 0
            guard died, clock.now >= schedule.notBefore else { continue }
            let how = process.terminationReason == .uncaughtSignal ? "signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
            let quickly = clock.now - schedule.started < .seconds(10)
            do {
                let restarted = try launch(id, into: nodes)
                nodes.restarted(id, quickly: quickly)
                say("node \(id) died (\(how)); restarted it (pid \(restarted.processIdentifier))")
            } catch {
                say("node \(id) died (\(how)); restarting it failed: \(error)")
                nodes.restarted(id, quickly: true)
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
                    guard nodes.processes.isRunning(id) else { continue }
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
                if !restart && nodes.processes.allExited {
                    say("every node exited; see the logs in \(dataDirectory)")
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            group.cancelAll()
        }
    }
}

/// The node processes of a local cluster, and when each may be restarted.
final class Nodes: Sendable {
    struct Schedule {
        var started: ContinuousClock.Instant
        /// A restart waits until then.
        var notBefore: ContinuousClock.Instant
        var backoff: Duration
    }

    let processes = NodeProcesses()
    private let schedules = Mutex<[Int: Schedule]>([:])

    subscript(id: Int) -> Schedule? { schedules.withLock { $0[id] } }

    func started(_ id: Int) {
        let now = ContinuousClock.now
        schedules.withLock { $0[id] = Schedule(started: now, notBefore: now, backoff: .seconds(1)) }
    }

    /// Node `id` was started again; `quickly` (it had died soon after its start) doubles the
    /// wait before the next restart, up to 30 s.
    func restarted(_ id: Int, quickly: Bool) {
        let now = ContinuousClock.now
        schedules.withLock { schedules in
            let backoff = quickly ? min((schedules[id]?.backoff ?? .seconds(1)) * 2, .seconds(30)) : .seconds(1)
            schedules[id] = Schedule(started: now, notBefore: now + backoff, backoff: backoff)
        }
    }

    /// SIGTERM to every running node, then waits for each.
    func stopAll() {
        processes.stopAll()
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
