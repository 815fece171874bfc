import ClusterPKI
import Foundation
import Launcher
import Synchronization
import ToolSupport

/// Chorus nodes as hosts of the lab: each `chorus-node` runs inside its host's namespace
/// (through `ip netns exec`, which execs it, so the process we hold is the node itself).
///
/// A host runs one node at a time. Host N starts with node N; the membership faults retire a
/// node (removed from the cluster, its data left behind) and start a new one, under a new id
/// with an empty data directory and `--join`, on a free host, as an operator replacing a
/// machine would.
final class ChaosCluster: Sendable {
    let lab: Lab
    let root: String
    let environment: [String: String]
    let port = 7000
    let peerPort = 7100
    /// Processes by host.
    private let processes = NodeProcesses()
    /// The run's CA and a certificate per node naming its lab address: the nodes talk mutual
    /// TLS, the workload TLS, as a production cluster does.
    let certificates: CertificateDirectory
    private let authority: Issuer

    private struct Placement {
        /// The node each host runs (or ran last and will restart); none on a free host.
        var nodes: [Int: UInt64] = [:]
        var nextID: UInt64 = 0
        /// Started with --join and not yet known to be added.
        var joining: Set<UInt64> = []
    }

    private let placement = Mutex(Placement())

    init(lab: Lab, root: String, environment: [String: String]) throws {
        self.lab = lab
        self.root = root
        self.environment = environment
        certificates = CertificateDirectory("\(root)/certs")
        try FileManager.default.createDirectory(atPath: certificates.path, withIntermediateDirectories: true)
        authority = try Issuer.newAuthority(cluster: "chaos")
        try authority.write(certificatePath: certificates.ca, keyPath: certificates.caKey)
        placement.withLock { placement in
            for host in 1...lab.nodes { placement.nodes[host] = UInt64(host) }
            placement.nextID = UInt64(lab.nodes) + 1
        }
        for host in hosts { try issueCertificate(id: UInt64(host), host: host) }
        try certificates.issue(authority, .operator(cluster: "chaos", name: "admin"), hosts: [], days: 2, to: certificates.operator("admin"))
    }

    private func issueCertificate(id: UInt64, host: Int) throws {
        try certificates.issue(authority, .node(cluster: "chaos", id: id), hosts: [lab.address(node: host)], days: 2, to: certificates.node(id))
    }

    /// What `chorus-tools member` and `transfer-leader` need to reach this cluster's Admin API.
    var adminArguments: [String] {
        let files = certificates.operator("admin")
        return ["--endpoints", hosts.map(peerEndpoint).joined(separator: ","), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
    }

    var hosts: [Int] { Array(1...lab.nodes) }
    func endpoint(_ host: Int) -> String { "\(lab.address(node: host)):\(port)" }
    func peerEndpoint(_ host: Int) -> String { "\(lab.address(node: host)):\(peerPort)" }
    var endpoints: [String] { hosts.map(endpoint) }
    func dataDirectory(node id: UInt64) -> String { "\(root)/node-\(id)" }
    func log(node id: UInt64) -> String { "\(root)/node-\(id).log" }

    /// The node host `host` runs, if any.
    func node(on host: Int) -> UInt64? { placement.withLock { $0.nodes[host] } }
    /// The host that runs node `id`.
    func host(of id: UInt64) -> Int? { placement.withLock { $0.nodes.first { $0.value == id }?.key } }
    /// Hosts that run a node.
    var occupied: [Int] { placement.withLock { $0.nodes.keys.sorted() } }
    var free: [Int] { hosts.filter { node(on: $0) == nil } }
    /// Every node id this run started, retired ones too (their logs name leaders).
    var everyNode: [UInt64] { placement.withLock { Array(1..<$0.nextID) } }

    func start(host: Int) throws {
        guard let id = node(on: host) else { return }
        let founders = id <= UInt64(lab.nodes)
        // A node added later joins: it knows only where the cluster is (its flags), and once
        // added, the log tells it the rest.
        let members: [NodeCommand.Member] = founders
            ? hosts.map { NodeCommand.Member(id: UInt64($0), peer: peerEndpoint($0), client: endpoint($0)) }
            : occupied.compactMap { other in self.node(on: other).map { NodeCommand.Member(id: $0, peer: peerEndpoint(other), client: endpoint(other)) } }
        var command = NodeCommand(id: id, cluster: "chaos", listen: endpoint(host), peerListen: peerEndpoint(host), dataDirectory: dataDirectory(node: id),
                                  tls: certificates.node(id), members: members)
        command.join = !founders
        command.extra = ["--password-iterations", "1000", "--snapshot-interval", "2000", "--snapshot-keep", "500",
                         // The workload's clients create their accounts from one address.
                         "--account-creations-per-minute", "1000000"]
        let arguments = ["netns", "exec", lab.namespace(node: host), Binaries.node] + command.arguments
        try processes.launch(host, executable: "/usr/sbin/ip", arguments: arguments, environment: environment, log: log(node: id))
    }

    /// Host `host` gives up its node: the process is killed (if it still runs) and the host is
    /// free. The node's data directory and log stay, as evidence.
    func retire(host: Int) {
        processes.kill(host)
        placement.withLock { _ = $0.nodes.removeValue(forKey: host) }
    }

    /// Puts a new node, under a new id with an empty data directory, on free host `host` and
    /// starts it with `--join`; returns its id. The cluster still has to add it.
    func placeNewNode(on host: Int) throws -> UInt64 {
        let id = placement.withLock { placement in
            let id = placement.nextID
            placement.nextID += 1
            placement.nodes[host] = id
            placement.joining.insert(id)
            return id
        }
        try issueCertificate(id: id, host: host)
        try start(host: host)
        return id
    }

    /// Node `id` was added: from now on it restarts like any member.
    func added(_ id: UInt64) {
        placement.withLock { _ = $0.joining.remove(id) }
    }

    /// Whether host `host` runs a node that waits to be added.
    func isJoining(host: Int) -> Bool {
        placement.withLock { placement in placement.nodes[host].map { placement.joining.contains($0) } ?? false }
    }

    func isRunning(host: Int) -> Bool { processes.isRunning(host) }

    func kill(host: Int) { processes.kill(host) }

    /// SIGSTOP: the node keeps its sockets and state but does nothing until continued.
    func pause(host: Int) { processes.signal(host, SIGSTOP) }

    func resumeAll() {
        for host in hosts { processes.signal(host, SIGCONT) }
    }

    /// Restarts every node that is down on a host that has one.
    func restartDead() throws {
        for host in occupied where !isRunning(host: host) { try start(host: host) }
    }

    /// SIGTERM to all (continuing paused ones first), then wait.
    func stopAll() {
        processes.stopAll(with: SIGTERM)
    }

    func killAll() {
        processes.stopAll(with: SIGKILL)
    }
}
