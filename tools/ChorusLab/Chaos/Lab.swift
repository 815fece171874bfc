import Foundation
import Synchronization
import ToolSupport

/// Hosts for a fault-injection run: one network namespace per node and one for the client,
/// each with its own address on 198.18.0.0/24, joined by veth links to a bridge that lives in
/// a namespace of its own. Nothing is added to the machine's own namespace, and closing the
/// lab deletes every namespace it made (which deletes their links, routes and rules).
final class Lab: Sendable {
    let prefix: String
    let nodes: Int
    /// The namespaces made so far: `close` may run from a signal handler (`ChaosCommand`)
    /// while the run itself is still adding or deleting them.
    private let namespaces = Mutex<[String]>([])

    init(nodes: Int) throws {
        guard getuid() == 0 else {
            throw ToolError("the fault-injection lab needs root (it creates network namespaces); run as root")
        }
        for tool in ["/usr/sbin/ip", "/usr/sbin/iptables"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ToolError("\(tool) is missing: apt-get install -y iproute2 iptables")
        }
        self.nodes = nodes
        prefix = "chorus-" + String(UUID().uuidString.prefix(6)).lowercased()
    }

    var bridge: String { "\(prefix)-sw" }
    func namespace(node id: Int) -> String { "\(prefix)-n\(id)" }
    var client: String { "\(prefix)-c" }
    func address(node id: Int) -> String { "198.18.0.\(10 + id)" }
    let clientAddress = "198.18.0.2"

    /// Builds the network: bridge namespace, hosts, links, addresses.
    func build() throws {
        try add(bridge)
        try ip(bridge, "link", "add", "br0", "type", "bridge")
        try ip(bridge, "link", "set", "br0", "up")
        let hosts = (1...nodes).map { (namespace(node: $0), address(node: $0), "n\($0)") } + [(client, clientAddress, "c")]
        for (host, address, short) in hosts {
            try add(host)
            // Created in the bridge's namespace, one end moved into the host.
            try ip(bridge, "link", "add", "v-\(short)", "type", "veth", "peer", "name", "eth0", "netns", host)
            try ip(bridge, "link", "set", "v-\(short)", "master", "br0")
            try ip(bridge, "link", "set", "v-\(short)", "up")
            try ip(host, "addr", "add", "\(address)/24", "dev", "eth0")
            try ip(host, "link", "set", "eth0", "up")
        }
    }

    private func add(_ name: String) throws {
        try run("/usr/sbin/ip", ["netns", "add", name])
        namespaces.withLock { $0.append(name) }
        try ip(name, "link", "set", "lo", "up")
    }

    /// Deletes every namespace this lab made.
    func close() {
        let made = namespaces.withLock { made in
            defer { made = [] }
            return made
        }
        for name in made.reversed() {
            _ = try? run("/usr/sbin/ip", ["netns", "del", name])
        }
    }

    // MARK: Faults

    /// Cuts the link between two nodes both ways (a blackhole route on each side).
    func cut(_ a: Int, _ b: Int) throws {
        try ip(namespace(node: a), "route", "replace", "blackhole", "\(address(node: b))/32")
        try ip(namespace(node: b), "route", "replace", "blackhole", "\(address(node: a))/32")
    }

    /// Drops every packet `a` sends to `b`; `b`'s packets still reach `a` (a one-way cut: TCP
    /// from either side stalls, but datagrams and half of each handshake go through).
    func cutOneWay(from a: Int, to b: Int) throws {
        try run("/usr/sbin/ip", ["netns", "exec", namespace(node: a), "iptables", "-A", "OUTPUT", "-d", address(node: b), "-j", "DROP"])
    }

    /// Cuts the client off from node `a`, both ways; the nodes still hear each other.
    func cutClient(from a: Int) throws {
        try ip(client, "route", "replace", "blackhole", "\(address(node: a))/32")
        try ip(namespace(node: a), "route", "replace", "blackhole", "\(clientAddress)/32")
    }

    /// Drops a fraction of the packets in and out of a node.
    func loss(_ node: Int, probability: Double) throws {
        let p = String(format: "%.2f", probability)
        for chain in ["INPUT", "OUTPUT"] {
            try run("/usr/sbin/ip", ["netns", "exec", namespace(node: node), "iptables", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"])
        }
    }

    /// Removes every cut and every loss rule.
    func heal() throws {
        for id in 1...nodes {
            let ns = namespace(node: id)
            for other in 1...nodes where other != id {
                _ = try? ip(ns, "route", "del", "blackhole", "\(address(node: other))/32")
            }
            _ = try? ip(ns, "route", "del", "blackhole", "\(clientAddress)/32")
            _ = try? ip(client, "route", "del", "blackhole", "\(address(node: id))/32")
            try run("/usr/sbin/ip", ["netns", "exec", ns, "iptables", "-F"])
        }
    }

    // MARK: Commands

    @discardableResult
    func ip(_ namespace: String, _ arguments: String...) throws -> String {
        try run("/usr/sbin/ip", ["-n", namespace] + arguments)
    }

    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> String {
        let result = try runCommand(executable, arguments)
        guard result.status == 0 else {
            throw ToolError("\(executable) \(arguments.joined(separator: " ")) failed: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result.output
    }
}
