import ClusterPKI
import Foundation

/// Chorus nodes as hosts of the lab: each `chorus-node` runs inside its namespace (through
/// `ip netns exec`, which execs it, so the process we hold is the node itself).
final class ChaosCluster: Sendable {
    let lab: Lab
    let root: String
    let environment: [String: String]
    let port = 7000
    let peerPort = 7100
    private let processes = ProcessGroup()
    /// The run's CA and a certificate per node naming its lab address: the nodes talk mutual
    /// TLS, the workload TLS, as a production cluster does.
    let certificates: CertificateDirectory

    init(lab: Lab, root: String, environment: [String: String]) throws {
        self.lab = lab
        self.root = root
        self.environment = environment
        certificates = CertificateDirectory("\(root)/certs")
        try FileManager.default.createDirectory(atPath: certificates.path, withIntermediateDirectories: true)
        let authority = try Issuer.newAuthority(cluster: "chaos")
        try authority.write(certificatePath: certificates.ca, keyPath: certificates.caKey)
        for id in 1...lab.nodes {
            try certificates.issue(authority, .node(cluster: "chaos", id: UInt64(id)), hosts: [lab.address(node: id)], days: 2, to: certificates.node(UInt64(id)))
        }
        try certificates.issue(authority, .operator(cluster: "chaos", name: "admin"), hosts: [], days: 2, to: certificates.operator("admin"))
    }

    /// What `chorus-tools member` and `transfer-leader` need to reach this cluster's Admin API.
    var adminArguments: [String] {
        let files = certificates.operator("admin")
        return ["--endpoints", ids.map(peerEndpoint).joined(separator: ","), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
    }

    var ids: [Int] { Array(1...lab.nodes) }
    func endpoint(_ id: Int) -> String { "\(lab.address(node: id)):\(port)" }
    func peerEndpoint(_ id: Int) -> String { "\(lab.address(node: id)):\(peerPort)" }
    var endpoints: [String] { ids.map(endpoint) }
    func dataDirectory(_ id: Int) -> String { "\(root)/node-\(id)" }

    func start(_ id: Int) throws {
        var arguments = ["netns", "exec", lab.namespace(node: id), Binaries.node, "run",
                         "--id", "\(id)", "--listen", endpoint(id), "--peer-listen", peerEndpoint(id), "--data-dir", dataDirectory(id), "--cluster-id", "chaos",
                         "--password-iterations", "1000", "--snapshot-interval", "2000", "--snapshot-keep", "500",
                         // The workload's clients create their accounts from one address.
                         "--account-creations-per-minute", "1000000"]
        let files = certificates.node(UInt64(id))
        arguments += ["--ca", files.ca, "--cert", files.certificate, "--key", files.key]
        for peer in ids { arguments += ["--peer", "\(peer)=\(peerEndpoint(peer)),\(endpoint(peer))"] }
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
