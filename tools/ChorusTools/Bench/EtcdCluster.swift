import Foundation

/// A 5-node etcd cluster of real processes on loopback (Debian's `etcd-server`), in its
/// default configuration (fsync on, 100 ms heartbeats, 1 s election timeout). Removes its
/// data when closed.
final class EtcdCluster: @unchecked Sendable {
    let size: Int
    let host: String
    let clientBasePort: Int
    let peerBasePort: Int
    let root: String
    private var processes: [Int: Process] = [:]
    private let lock = NSLock()

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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        let cluster = ids.map { "n\($0)=\(peerURL($0))" }.joined(separator: ",")
        process.arguments = [
            "--name", "n\(id)", "--data-dir", "\(root)/n\(id)",
            "--listen-client-urls", "http://\(address(id))", "--advertise-client-urls", "http://\(address(id))",
            "--listen-peer-urls", peerURL(id), "--initial-advertise-peer-urls", peerURL(id),
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
            "--logger", "zap", "--log-level", "warn",
        ]
        let log = "\(root)/n\(id).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { processes[id] = process }
    }

    func startAll() throws {
        for id in ids { try start(id) }
    }

    func kill(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func close() {
        let running = lock.withLock { processes.values.filter(\.isRunning) }
        for process in running { Foundation.kill(process.processIdentifier, SIGKILL) }
        for process in running { process.waitUntilExit() }
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
