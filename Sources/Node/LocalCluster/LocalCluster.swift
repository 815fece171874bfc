import API
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2

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

    public init(size: Int, host: String, basePort: Int, dataDirectory: String, executable: String, extraArguments: [String] = [], insecure: Bool = false) {
        self.size = size
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

    func peerAddress(_ id: Int) -> String { insecure ? "\(host):\(basePort + id - 1)" : "\(host):\(basePort + 100 + id - 1)" }

    public func arguments(for id: Int) -> [String] {
        var arguments = ["run", "--id", "\(id)", "--listen", "\(host):\(basePort + id - 1)",
                         "--data-dir", "\(dataDirectory)/node-\(id)", "--cluster-id", "local"]
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
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning { process.terminate() }
            for process in processes { process.waitUntilExit() }
            say("all nodes stopped; data kept in \(dataDirectory)")
        }
        if !insecure {
            try certificates.ensureLocal(cluster: "local", nodes: size, hosts: [host, "localhost"])
            say("TLS on: the cluster's CA is \(certificates.ca) (chorus finds it when run here with the default endpoints; elsewhere pass --ca)")
        }
        for (id, address) in addresses {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments(for: id)
            let log = "\(dataDirectory)/node-\(id).log"
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            // Appended to, never truncated: a killed node's last words are evidence.
            if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try handle.seekToEnd()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            processes.append(process)
            say("node \(id): \(address)  (pid \(process.processIdentifier), log \(log))")
        }
        say("cluster of \(size) starting; endpoints: \(addresses.map(\.address).joined(separator: ","))")
        say("press Ctrl-C to stop")
        try await watchLeader(processes: processes)
    }

    /// Polls every node's status and prints each change of leader or term.
    func watchLeader(processes: [Process]) async throws {
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
                var leaders: [String] = []
                for (id, client) in clients {
                    guard processes[id - 1].isRunning else { continue }
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
                let exited = processes.enumerated().filter { !$0.element.isRunning }.map { $0.offset + 1 }
                if exited.count == processes.count {
                    say("every node exited; see the logs in \(dataDirectory)")
                    break
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            group.cancelAll()
        }
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
