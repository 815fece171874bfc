import Foundation
import Launcher
import ToolSupport

/// A 5-node etcd cluster of real processes on loopback (Debian's `etcd-server`), in its
/// default configuration (fsync on, 100 ms heartbeats, 1 s election timeout). Removes its
/// data when closed.
final class EtcdCluster: Sendable {
    let size: Int
    let host: String
    let clientBasePort: Int
    let peerBasePort: Int
    let root: String
    private let processes = NodeProcesses()

    init(size: Int = 5, host: String, clientBasePort: Int, peerBasePort: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
            throw ToolError("etcd is not installed (apt-get install -y etcd-server etcd-client)")
        }
        self.size = size
        self.host = host
        self.clientBasePort = clientBasePort
        self.peerBasePort = peerBasePort
        root = NSTemporaryDirectory() + "etcd-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    var ids: [Int] { Array(1...size) }
    func address(_ id: Int) -> String { "\(host):\(clientBasePort + id - 1)" }
    var endpoints: [String] { ids.map(address) }
    private func peerURL(_ id: Int) -> String { "http://\(host):\(peerBasePort + id - 1)" }

    func start(_ id: Int) throws {
        let cluster = ids.map { "n\($0)=\(peerURL($0))" }.joined(separator: ",")
        try processes.launch(id, executable: "/usr/bin/etcd", arguments: [
            "--name", "n\(id)", "--data-dir", "\(root)/n\(id)",
            "--listen-client-urls", "http://\(address(id))", "--advertise-client-urls", "http://\(address(id))",
            "--listen-peer-urls", peerURL(id), "--initial-advertise-peer-urls", peerURL(id),
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
            "--logger", "zap", "--log-level", "warn",
        ], log: "\(root)/n\(id).log")
    }

    func startAll() throws {
        for id in ids { try start(id) }
    }

    func kill(_ id: Int) {
        processes.kill(id)
    }

    func close() {
        processes.stopAll(with: SIGKILL)
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The leader's endpoint, member id and term, once a majority answers and agrees.
    func waitForLeader(_ client: EtcdClient, within: Duration = .seconds(30)) async throws -> (id: Int, member: UInt64, term: UInt64) {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            let statuses = await client.statuses()
            for (n, entry) in statuses.enumerated() {
                if let status = entry.status, status.leader != 0, status.leader == status.header.memberID {
                    return (ids[n], status.leader, status.raftTerm)
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolError("etcd elected no leader within \(within)")
    }
}
