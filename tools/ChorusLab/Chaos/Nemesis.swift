import Foundation
import ToolSupport

/// The faults a run injects, chosen at random (from the run's seed) on a schedule.
enum Fault: CaseIterable, CustomStringConvertible {
    case killRandom, killLeader, pauseLeader, partitionHalves, isolateLeader, bridge, loss, killAll, transferLeader
    case removeMember, addMember, replaceMember
    case oneWayCut, clientCut, longIsolateLeader, changeDuringIsolation

    var description: String {
        switch self {
        case .killRandom: "SIGKILL a random node"
        case .killLeader: "SIGKILL the leader"
        case .pauseLeader: "SIGSTOP the leader"
        case .partitionHalves: "partition into random halves"
        case .isolateLeader: "isolate the leader"
        case .bridge: "bridge partition (one node sees both sides)"
        case .loss: "packet loss on a node"
        case .killAll: "SIGKILL every node, then restart"
        case .transferLeader: "hand leadership to another node (Admin API)"
        case .removeMember: "remove a member (Admin API; it stops itself)"
        case .addMember: "start a new node with --join on a free host and add it (promoted once caught up)"
        case .replaceMember: "SIGKILL a member, remove it, and add a new node with an empty data directory in its place"
        case .oneWayCut: "drop what one node (often the leader) sends to one or two others; they still reach it"
        case .clientCut: "cut the client off from one or two nodes (the leader among them, sometimes)"
        case .longIsolateLeader: "isolate the leader for 20 s, past the peers' keepalive, so connections close"
        case .changeDuringIsolation: "isolate the leader and at once ask for a membership change (Admin API)"
        }
    }

    /// How long the fault stands before it is healed, in milliseconds, when not the usual
    /// 1–4 s.
    var hold: ClosedRange<Int>? {
        switch self {
        case .longIsolateLeader: 20_000...22_000
        case .changeDuringIsolation: 4_000...8_000
        default: nil
        }
    }

    /// Faults that may be laid over another before it heals (not those that restart or
    /// reconfigure the cluster, which wait on it).
    var overlaps: Bool {
        switch self {
        case .killRandom, .killLeader, .pauseLeader, .partitionHalves, .isolateLeader, .bridge, .loss, .oneWayCut, .clientCut: true
        default: false
        }
    }

    /// The name `chaos --faults` takes.
    var name: String {
        switch self {
        case .killRandom: "kill-random"
        case .killLeader: "kill-leader"
        case .pauseLeader: "pause-leader"
        case .partitionHalves: "partition-halves"
        case .isolateLeader: "isolate-leader"
        case .bridge: "bridge"
        case .loss: "loss"
        case .killAll: "kill-all"
        case .transferLeader: "transfer-leader"
        case .removeMember: "remove-member"
        case .addMember: "add-member"
        case .replaceMember: "replace-member"
        case .oneWayCut: "one-way-cut"
        case .clientCut: "client-cut"
        case .longIsolateLeader: "long-isolate-leader"
        case .changeDuringIsolation: "change-during-isolation"
        }
    }
}

struct Nemesis {
    let lab: Lab
    let cluster: ChaosCluster
    var random: SplitMix

    /// The host of the leader of the highest term, as the nodes' ClusterStatus says; from their
    /// logs when none answers. (Logs alone lag: a fault meant for the leader then hit a
    /// follower.)
    func leader() -> Int? {
        statusLeader() ?? loggedLeader()
    }

    /// The leader of the highest term among the nodes that answer ClusterStatus (`chorus
    /// status --json` from the client's namespace, as a client sees them).
    func statusLeader() -> Int? {
        let cli = Binaries.cli
        guard FileManager.default.isExecutableFile(atPath: cli),
              let result = try? runCommand("/usr/bin/timeout", ["5", "/usr/sbin/ip", "netns", "exec", lab.client, cli, "status", "--json",
                                                               "--endpoints", cluster.endpoints.joined(separator: ","), "--ca", cluster.certificates.ca]),
              let start = result.output.firstIndex(of: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(result.output[start...].utf8)) as? [String: Any],
              let nodes = object["nodes"] as? [[String: Any]]
        else { return nil }
        let leaders = nodes.compactMap { node -> (term: Int, id: Int)? in
            guard node["role"] as? String == "leader", let id = node["node"] as? Int, let term = node["term"] as? Int else { return nil }
            return (term, id)
        }
        return leaders.max { $0.term < $1.term }.flatMap { cluster.host(of: UInt64($0.id)) }
    }

    /// The host of the leader of the highest term any node's log announces.
    func loggedLeader() -> Int? {
        var best: (term: Int, leader: Int)?
        for id in cluster.everyNode {
            guard let text = try? String(contentsOfFile: cluster.log(node: id), encoding: .utf8) else { continue }
            for whole in text.split(separator: "\n").suffix(200) {
                // "… [Node] role leader, leader 3, term 7"; metadata before it repeats the words.
                guard let start = whole.range(of: "] role ") else { continue }
                let line = whole[start.upperBound...]
                guard let leaderPart = line.range(of: "leader "), let termPart = line.range(of: "term ") else { continue }
                let leader = Int(line[leaderPart.upperBound...].prefix { $0.isNumber }) ?? 0
                let term = Int(line[termPart.upperBound...].prefix { $0.isNumber }) ?? 0
                if leader != 0, term > (best?.term ?? -1) { best = (term, leader) }
            }
        }
        return best.flatMap { cluster.host(of: UInt64($0.leader)) }
    }

    mutating func pick<T>(_ items: [T]) -> T {
        items[Int(random.next() % UInt64(items.count))]
    }

    /// Injects one fault and says what it did.
    mutating func inject(_ fault: Fault) throws -> String {
        let hosts = cluster.hosts
        let leader = self.leader() ?? pick(cluster.occupied)
        func name(_ host: Int) -> String { cluster.node(on: host).map { "node \($0)" } ?? "free host \(host)" }
        switch fault {
        case .killRandom:
            let victim = pick(cluster.occupied)
            cluster.kill(host: victim)
            return "killed \(name(victim))"
        case .killLeader:
            cluster.kill(host: leader)
            return "killed leader \(name(leader))"
        case .pauseLeader:
            cluster.pause(host: leader)
            return "paused leader \(name(leader))"
        case .partitionHalves:
            var shuffled = hosts
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            let (a, b) = (Array(shuffled.prefix(2)), Array(shuffled.dropFirst(2)))
            for x in a { for y in b { try lab.cut(x, y) } }
            return "partitioned hosts \(a.sorted()) | \(b.sorted())"
        case .isolateLeader:
            for other in hosts where other != leader { try lab.cut(leader, other) }
            return "isolated leader \(name(leader))"
        case .bridge:
            let middle = pick(hosts)
            let rest = hosts.filter { $0 != middle }
            let (a, b) = (Array(rest.prefix(2)), Array(rest.dropFirst(2)))
            for x in a { for y in b { try lab.cut(x, y) } }
            return "bridge: hosts \(a) | \(b), host \(middle) sees both"
        case .loss:
            let victim = pick(hosts)
            try lab.loss(victim, probability: 0.2 + Double(random.next() % 30) / 100)
            return "packet loss on host \(victim)"
        case .killAll:
            cluster.killAll()
            try cluster.restartDead()
            return "killed all nodes and restarted them"
        case .transferLeader:
            let candidates = cluster.occupied.filter { $0 != leader && !cluster.isJoining(host: $0) }
            guard !candidates.isEmpty, let target = cluster.node(on: pick(candidates)) else { return "transfer leadership: no other member" }
            let result = try admin(["transfer-leader", "--to", "\(target)"], timeout: 15)
            return "transfer leadership \(name(leader)) → node \(target): \(result)"
        case .removeMember:
            // Only from a full cluster, so at least four members stay; short of one, the
            // operator adds a node instead.
            let members = cluster.occupied.filter { !cluster.isJoining(host: $0) }
            guard members.count == hosts.count else { return try inject(.addMember) }
            let host = pick(members.filter { $0 != leader })
            return try remove(host: host)
        case .addMember:
            if let host = cluster.occupied.first(where: cluster.isJoining(host:)) {
                return try add(host: host)
            }
            guard !cluster.free.isEmpty else { return "add a member: skipped, no free host" }
            return try add(host: pick(cluster.free))
        case .replaceMember:
            // Four members at least, so three stay while the new one catches up.
            let members = cluster.occupied.filter { !cluster.isJoining(host: $0) }
            guard members.count >= hosts.count - 1 else { return "replace a member: skipped, the cluster has \(members.count) members" }
            let host = pick(members.filter { $0 != leader })
            // The machine fails first; the operator then removes it and adds a new one.
            cluster.kill(host: host)
            let removed = try remove(host: host)
            guard cluster.node(on: host) == nil else { return "replace: " + removed }
            return "replace: " + removed + "; " + (try add(host: host))
        case .oneWayCut:
            let from = random.next() % 2 == 0 ? leader : pick(hosts)
            var others = hosts.filter { $0 != from }
            var to: [Int] = []
            for _ in 0..<(1 + Int(random.next() % 2)) {
                let host = pick(others)
                to.append(host)
                others.removeAll { $0 == host }
            }
            for host in to { try lab.cutOneWay(from: from, to: host) }
            return "one-way cut: \(name(from)) → hosts \(to.sorted()) dropped (\(from == leader ? "the leader" : "not the leader"))"
        case .clientCut:
            var cut = random.next() % 2 == 0 ? [leader] : []
            while cut.count < 1 + Int(random.next() % 2) {
                let host = pick(hosts)
                if !cut.contains(host) { cut.append(host) }
            }
            for host in cut { try lab.cutClient(from: host) }
            return "client cut off from hosts \(cut.sorted())\(cut.contains(leader) ? " (the leader's among them)" : "")"
        case .longIsolateLeader:
            for other in hosts where other != leader { try lab.cut(leader, other) }
            return "isolated leader \(name(leader)) for 20 s"
        case .changeDuringIsolation:
            for other in hosts where other != leader { try lab.cut(leader, other) }
            let members = cluster.occupied.filter { !cluster.isJoining(host: $0) }
            let change = members.count == hosts.count ? try remove(host: pick(members.filter { $0 != leader })) : try inject(.addMember)
            return "isolated leader \(name(leader)), then: \(change)"
        }
    }

    /// Removes the node on `host` through the Admin API; frees the host when it is gone.
    private func remove(host: Int) throws -> String {
        guard let id = cluster.node(on: host) else { return "remove: host \(host) is free" }
        let result = try admin(["member", "remove", "\(id)"], timeout: 20)
        if result.hasPrefix("ok") || result.contains("is not a member") {
            // It stops itself once the members tell it; the lab need not wait for that.
            cluster.retire(host: host)
        }
        return "remove node \(id): \(result)"
    }

    /// Adds a new node on `host` (started now unless it already waits there) and asks for it to
    /// be promoted once caught up.
    private func add(host: Int) throws -> String {
        let id = try cluster.node(on: host).flatMap { cluster.isJoining(host: host) ? $0 : nil } ?? cluster.placeNewNode(on: host)
        let result = try admin(["member", "add", "\(id)", "--peer-address", cluster.peerEndpoint(host), "--client-address", cluster.endpoint(host), "--promote"], timeout: 60)
        if result.hasPrefix("ok") || result.contains("is a member already") {
            cluster.added(id)
        }
        return "add node \(id) on host \(host): \(result)"
    }

    /// Runs `chorus-tools` with the operator's certificate from the client's namespace, as an
    /// operator would. A cluster in the middle of another fault may refuse or time out, which
    /// is an outcome too: "ok: …" or "failed: …".
    private func admin(_ arguments: [String], timeout: Int) throws -> String {
        let result = try runCommand("/usr/bin/timeout", ["\(timeout)", "/usr/sbin/ip", "netns", "exec", lab.client, Binaries.tools] + arguments + cluster.adminArguments)
        let said = result.output.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return (result.status == 0 ? "ok: " : result.status == 124 ? "timed out: " : "failed: ") + said.prefix(160)
    }

    /// Undoes every fault: network healed, paused nodes continued, dead nodes restarted.
    func heal() throws {
        try lab.heal()
        cluster.resumeAll()
        try cluster.restartDead()
    }
}
