import Foundation

/// The faults a run injects, chosen at random (from the run's seed) on a schedule.
enum Fault: CaseIterable, CustomStringConvertible {
    case killRandom, killLeader, pauseLeader, partitionHalves, isolateLeader, bridge, loss, killAll, transferLeader

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
        }
    }
}

struct Nemesis {
    let lab: Lab
    let cluster: ChaosCluster
    var random: SplitMix

    /// The leader of the highest term any node's log announces.
    func leader() -> Int? {
        var best: (term: Int, leader: Int)?
        for id in cluster.ids {
            guard let text = try? String(contentsOfFile: "\(cluster.root)/node-\(id).log", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").suffix(200) where line.contains("] role ") {
                guard let leaderPart = line.range(of: "leader "), let termPart = line.range(of: "term ") else { continue }
                let leader = Int(line[leaderPart.upperBound...].prefix { $0.isNumber }) ?? 0
                let term = Int(line[termPart.upperBound...].prefix { $0.isNumber }) ?? 0
                if leader != 0, term > (best?.term ?? -1) { best = (term, leader) }
            }
        }
        return best.map(\.leader)
    }

    mutating func pick<T>(_ items: [T]) -> T {
        items[Int(random.next() % UInt64(items.count))]
    }

    /// Injects one fault and says what it did.
    mutating func inject(_ fault: Fault) throws -> String {
        let ids = cluster.ids
        let leader = self.leader() ?? pick(ids)
        switch fault {
        case .killRandom:
            let victim = pick(ids)
            cluster.kill(victim)
            return "killed node \(victim)"
        case .killLeader:
            cluster.kill(leader)
            return "killed leader \(leader)"
        case .pauseLeader:
            cluster.pause(leader)
            return "paused leader \(leader)"
        case .partitionHalves:
            var shuffled = ids
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            let (a, b) = (Array(shuffled.prefix(2)), Array(shuffled.dropFirst(2)))
            for x in a { for y in b { try lab.cut(x, y) } }
            return "partitioned \(a.sorted()) | \(b.sorted())"
        case .isolateLeader:
            for other in ids where other != leader { try lab.cut(leader, other) }
            return "isolated leader \(leader)"
        case .bridge:
            let middle = pick(ids)
            let rest = ids.filter { $0 != middle }
            let (a, b) = (Array(rest.prefix(2)), Array(rest.dropFirst(2)))
            for x in a { for y in b { try lab.cut(x, y) } }
            return "bridge: \(a) | \(b), node \(middle) sees both"
        case .loss:
            let victim = pick(ids)
            try lab.loss(victim, probability: 0.2 + Double(random.next() % 30) / 100)
            return "packet loss on node \(victim)"
        case .killAll:
            cluster.killAll()
            try cluster.restartDead()
            return "killed all nodes and restarted them"
        case .transferLeader:
            let target = pick(ids.filter { $0 != leader })
            // From the client's namespace, as an operator would; a cluster in the middle of
            // another fault may refuse or time out, which is an outcome too.
            let result = try runCommand("/usr/bin/timeout", ["15", "/usr/sbin/ip", "netns", "exec", lab.client, Binaries.tools, "transfer-leader", "--to", "\(target)"] + cluster.adminArguments)
            let said = result.output.split(separator: "\n").last.map(String.init) ?? ""
            return "transfer leadership \(leader) → \(target): \(result.status == 0 ? said : "refused or timed out (\(said.prefix(120)))")"
        }
    }

    /// Undoes every fault: network healed, paused nodes continued, dead nodes restarted.
    func heal() throws {
        try lab.heal()
        cluster.resumeAll()
        try cluster.restartDead()
    }
}
