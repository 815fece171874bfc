import Foundation

/// Chorus nodes as hosts of the lab: each `chorus-node` runs inside its namespace (through
/// `ip netns exec`, which execs it, so the process we hold is the node itself).
final class ChaosCluster: Sendable {
    let lab: Lab
    let root: String
    let environment: [String: String]
    let port = 7000
    private let processes = ProcessGroup()

    init(lab: Lab, root: String, environment: [String: String]) {
        self.lab = lab
        self.root = root
        self.environment = environment
    }

    var ids: [Int] { Array(1...lab.nodes) }
    func endpoint(_ id: Int) -> String { "\(lab.address(node: id)):\(port)" }
    var endpoints: [String] { ids.map(endpoint) }
    func dataDirectory(_ id: Int) -> String { "\(root)/node-\(id)" }

    func start(_ id: Int) throws {
        var arguments = ["netns", "exec", lab.namespace(node: id), Binaries.node, "run",
                         "--id", "\(id)", "--listen", endpoint(id), "--data-dir", dataDirectory(id), "--cluster-id", "chaos",
                         "--password-iterations", "1000", "--snapshot-interval", "2000", "--snapshot-keep", "500", "--insecure"]
        for peer in ids { arguments += ["--peer", "\(peer)=\(endpoint(peer))"] }
        try processes.launch(id, executable: "/usr/sbin/ip", arguments: arguments, environment: environment, log: "\(root)/node-\(id).log")
    }

    func isRunning(_ id: Int) -> Bool { processes.isRunning(id) }

    func kill(_ id: Int) { processes.signal(id, SIGKILL) }

    /// SIGSTOP: the node keeps its sockets and state but does nothing until continued.
    func pause(_ id: Int) { processes.signal(id, SIGSTOP) }

    func resumeAll() {
        for id in ids { processes.signal(id, SIGCONT) }
    }

    /// Restarts every node that is down.
    func restartDead() throws {
        for id in ids where !isRunning(id) { try start(id) }
    }

    /// SIGTERM to all (continuing paused ones first), then wait.
    func stopAll() {
        resumeAll()
        processes.stopAll(with: SIGTERM)
    }

    func killAll() {
        resumeAll()
        processes.stopAll(with: SIGKILL)
    }
}
