import Client
import ClusterPKI
import Foundation
import Launcher
import ToolSupport

/// A 5-node Chorus cluster of real `chorus-node` processes (the binary next to this one),
/// for benchmarks that must kill and restart nodes. Removes its data when closed.
final class BenchCluster: Sendable {
    let size: Int
    let host: String
    let basePort: Int
    let root: String
    let extraArguments: [String]
    /// TLS as `scripts/cluster.sh` runs it (clients on the base ports, peers on base + 100 over
    /// mutual TLS), or plaintext on one listener.
    let tls: Bool
    private let processes = NodeProcesses()

    init(size: Int = 5, host: String, basePort: Int, tls: Bool = false, extraArguments: [String] = []) throws {
        self.size = size
        self.host = host
        self.basePort = basePort
        self.tls = tls
        self.extraArguments = extraArguments
        root = NSTemporaryDirectory() + "chorus-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if tls { try certificates.ensureLocal(cluster: "bench", nodes: size, hosts: [host]) }
    }

    var certificates: CertificateDirectory { CertificateDirectory("\(root)/certs") }
    var security: ClientSecurity { tls ? .tls(ca: certificates.ca) : .plaintext }
    func peerAddress(_ id: Int) -> String { tls ? "\(host):\(basePort + 100 + id - 1)" : address(id) }

    var ids: [Int] { Array(1...size) }
    func address(_ id: Int) -> String { "\(host):\(basePort + id - 1)" }
    var endpoints: [String] { ids.map(address) }

    func start(_ id: Int) throws {
        var command = NodeCommand(id: UInt64(id), cluster: "bench", listen: address(id), peerListen: tls ? peerAddress(id) : nil,
                                  dataDirectory: "\(root)/node-\(id)", tls: tls ? certificates.node(UInt64(id)) : nil,
                                  members: ids.map { NodeCommand.Member(id: UInt64($0), peer: peerAddress($0), client: address($0)) })
        // A load generator creates an account per caller, all from one address.
        command.extra = ["--account-creations-per-minute", "1000000"] + extraArguments
        try processes.launch(id, executable: Binaries.node, arguments: command.arguments, log: "\(root)/node-\(id).log")
    }

    func startAll() throws {
        for id in ids { try start(id) }
    }

    func kill(_ id: Int) {
        processes.kill(id)
    }

    /// Stops every node and removes the data.
    func close() {
        processes.stopAll(with: SIGKILL)
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The leader's status once one is known to all running nodes.
    func waitForLeader(_ client: ChorusClient, within: Duration = .seconds(20)) async throws -> NodeStatus {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            let statuses = await client.status().compactMap(\.status)
            if let leader = statuses.filter({ $0.role == "leader" }).max(by: { $0.term < $1.term }) { return leader }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolError("no leader within \(within)")
    }
}
