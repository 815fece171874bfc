import Raft
import Testing

/// Leader election, ported from MIT 6.5840's 3A tests.
@Suite struct ElectionScenarios {
    @Test func initialElection() {
        simulate(seeds: 200) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            let leader = try sim.waitForLeader()
            let term = sim.raft(leader).term
            try require(term >= 1, sim, "leader has term 0")
            // With no failures the leader stays and the term does not move.
            try sim.run(ticks: 100)
            try require(sim.leader() == leader, sim, "leadership changed without failures")
            try require(sim.ids.allSatisfy { sim.raft($0).term == term }, sim, "term changed without failures")
        }
    }

    @Test func reElection() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            let first = try sim.waitForLeader()
            sim.disconnect(first)
            let second = try sim.waitForLeader()
            try require(second != first, sim, "isolated leader still counted")
            // The old leader rejoins: one leader, the newer one or a later one.
            sim.connect(first)
            let third = try sim.waitForLeader()
            _ = third
            // No quorum: no leader among the remaining one.
            let current = try sim.waitForLeader()
            let follower = sim.ids.first { $0 != current }!
            sim.disconnect(current)
            sim.disconnect(follower)
            try sim.run(ticks: 60)
            let alone = sim.ids.first { $0 != current && $0 != follower }!
            try require(sim.raft(alone).role != .leader, sim, "a single server of three elected itself")
            sim.connect(follower)
            _ = try sim.waitForLeader()
            sim.connect(current)
            _ = try sim.waitForLeader()
        }
    }

    @Test func noLeaderWithoutQuorum() {
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            _ = try sim.waitForLeader()
            var random = SimRandom(state: seed)
            let down = random.subset(of: sim.ids, count: 3)
            for id in down { sim.crash(id) }
            let up = sim.ids.filter { !down.contains($0) }
            try sim.run(ticks: 100)
            for id in up {
                try require(sim.raft(id).role != .leader, sim, "\(id) leads with 2 of 5 up")
            }
            for id in down { sim.restart(id) }
            _ = try sim.waitForLeader()
        }
    }

    @Test func manyElections() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 7)
            var random = SimRandom(state: seed)
            _ = try sim.waitForLeader()
            for _ in 0..<6 {
                let cut = random.subset(of: sim.ids, count: 3)
                for id in cut { sim.disconnect(id) }
                _ = try sim.waitForLeader()
                for id in cut { sim.connect(id) }
            }
            _ = try sim.waitForLeader()
        }
    }

    @Test func preVoteKeepsAPartitionedServerFromBumpingTerms() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            let leader = try sim.waitForLeader()
            try sim.commit(command(1), expected: 5)
            let loner = sim.ids.first { $0 != leader }!
            let term = sim.raft(leader).term
            sim.disconnect(loner)
            try sim.run(ticks: 200)
            try require(sim.raft(loner).term == term, sim, "an isolated server bumped its term to \(sim.raft(loner).term)")
            sim.connect(loner)
            try sim.run(ticks: 50)
            try require(sim.leader() == leader, sim, "rejoining server disrupted the leader")
            try require(sim.raft(leader).term == term, sim, "rejoining server bumped the cluster's term")
        }
    }

    @Test func withoutPreVoteARejoiningServerDisruptsTheCluster() {
        // The control experiment: it shows the pre-vote test above can fail.
        var disrupted = 0, runs = 0
        simulate(seeds: 20) { seed in
            runs += 1
            let sim = Simulation(seed: seed, nodes: 3) { $0.preVote = false; $0.checkQuorum = false }
            let leader = try sim.waitForLeader()
            let term = sim.raft(leader).term
            let loner = sim.ids.first { $0 != leader }!
            sim.disconnect(loner)
            try sim.run(ticks: 200)
            if sim.raft(loner).term > term { disrupted += 1 }
        }
        #expect(disrupted == runs)
    }

    @Test func checkQuorumDeposesAnIsolatedLeader() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            let leader = try sim.waitForLeader()
            sim.disconnect(leader)
            // Within two election timeouts it notices it hears from nobody and steps down.
            let steppedDown = try sim.run(upTo: 25) { sim.raft(leader).role != .leader }
            try require(steppedDown, sim, "isolated leader \(leader) kept leading")
            let other = try sim.waitForLeader()
            try require(other != leader, sim, "the majority did not elect a new leader")
        }
    }

    @Test func oneWayPartitionDoesNotWedgeTheCluster() {
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            let leader = try sim.waitForLeader()
            let follower = sim.ids.first { $0 != leader }!
            // The follower hears the leader but its answers are lost.
            sim.cutOneWay(from: follower, to: leader)
            try sim.commit(command(1), expected: 2)
            sim.heal()
            try sim.commit(command(2), expected: 3)
        }
    }
}
