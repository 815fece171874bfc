import Raft
import Testing

/// Log replication, ported from MIT 6.5840's 3B tests and etcd's interaction tests.
@Suite struct ReplicationScenarios {
    @Test func basicAgreement() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            _ = try sim.waitForLeader()
            var last: Index = 0
            for n in 1...5 {
                let index = try sim.commit(command(n), expected: 5)
                try require(index > last, sim, "index \(index) did not advance past \(last)")
                last = index
            }
        }
    }

    @Test func followerFailureAndRejoin() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(101), expected: 3)
            let leader = try sim.waitForLeader()
            let follower = sim.ids.first { $0 != leader }!
            sim.disconnect(follower)
            try sim.commit(command(102), expected: 2)
            try sim.run(ticks: 20)
            try sim.commit(command(103), expected: 2)
            sim.connect(follower)
            try sim.commit(command(104), expected: 3)
            // Both remaining followers gone: nothing commits.
            let leader2 = try sim.waitForLeader()
            for id in sim.ids where id != leader2 { sim.disconnect(id) }
            guard let (_, index) = sim.propose(command(105), via: leader2) else { return }
            try sim.run(ticks: 40)
            try require(sim.appliedCount(index, command(105)) == 0, sim, "committed without a majority")
        }
    }

    /// A follower that was away while the leader filled its whole in-flight window must not
    /// stay paused forever when it comes back.
    @Test func followerReturnsAfterTheWindowFilled() {
        simulate(seeds: 60) { seed in
            let sim = Simulation(seed: seed, nodes: 3) { $0.maxInflightMessages = 4 }
            try sim.commit(command(0), expected: 3)
            let leader = try sim.waitForLeader()
            let follower = sim.ids.first { $0 != leader }!
            sim.crash(follower)
            for n in 1...30 { try sim.commit(command(n), expected: 2) }
            sim.restart(follower)
            try sim.commit(command(99), expected: 3, ticks: 300)
            try require(sim.node(follower).appliedIndex >= sim.raft(sim.leader()!).commitIndex - 1, sim, "follower did not catch up")
        }
    }

    @Test func failNoAgree() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try sim.commit(command(10), expected: 5)
            let leader = try sim.waitForLeader()
            let followers = sim.ids.filter { $0 != leader }
            for id in followers.prefix(3) { sim.disconnect(id) }
            let (_, index) = try #require(sim.propose(command(20), via: leader))
            try sim.run(ticks: 40)
            try require(sim.appliedCount(index, command(20)) == 0, sim, "committed with 2 of 5")
            for id in followers.prefix(3) { sim.connect(id) }
            _ = try sim.waitForLeader()
            try sim.commit(command(30), expected: 5)
        }
    }

    @Test func concurrentProposals() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            let leader = try sim.waitForLeader()
            // Many proposals in one batch and several back to back: one index each, in order.
            try require(sim.raft(leader).role == .leader, sim, "lost leadership")
            sim.mutateRaft(leader) { _ = $0.propose((1...20).map { command($0) }) }
            for n in 21...30 { _ = sim.propose(command(n), via: leader) }
            try sim.waitForConvergence()
            let applied = sim.node(leader).appliedData.values.filter { !$0.isEmpty }
            if sim.raft(leader).term == sim.checker.leaders.keys.max() && sim.leader() == leader {
                try require(applied.count >= 30, sim, "only \(applied.count) of 30 applied")
            }
        }
    }

    @Test func rejoinOfPartitionedLeader() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(101), expected: 3)
            let leader1 = try sim.waitForLeader()
            sim.disconnect(leader1)
            // Entries only the old leader has.
            for n in 102...104 { _ = sim.propose(command(n), via: leader1) }
            try sim.run(ticks: 5)
            try sim.commit(command(103), expected: 2)
            let leader2 = try sim.waitForLeader()
            sim.disconnect(leader2)
            sim.connect(leader1)
            try sim.commit(command(104), expected: 2)
            sim.connect(leader2)
            try sim.commit(command(105), expected: 3)
            try sim.waitForConvergence()
            // The old leader's uncommitted entries were overwritten everywhere.
            for id in sim.ids {
                let values = sim.node(id).appliedData.values.map { String(decoding: $0, as: UTF8.self) }
                try require(values.filter { $0 == "cmd-102" }.isEmpty, sim, "overwritten entry applied on \(id)")
            }
        }
    }

    @Test func backupWithFastBacktracking() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try sim.commit(command(0), expected: 5)
            // Leader and one follower partitioned with 50 entries that never commit.
            let leader1 = try sim.waitForLeader()
            let mate = sim.ids.first { $0 != leader1 }!
            let others = sim.ids.filter { $0 != leader1 && $0 != mate }
            sim.partition([[leader1, mate], others])
            for n in 1...50 { _ = sim.propose(command(n, "lost"), via: leader1) }
            try sim.run(ticks: 10)
            // The majority moves on with 50 committed entries.
            _ = try sim.waitForLeader(among: others)
            for n in 1...50 { try sim.commit(command(n, "kept"), expected: 3) }
            // Heal: the old pair must converge without one round trip per entry.
            sim.heal()
            let before = sim.sentCount
            try sim.waitForConvergence()
            try sim.commit(command(99), expected: 5)
            let used = sim.sentCount - before
            try require(used < 400, sim, "backtracking used \(used) messages")
            for id in [leader1, mate] {
                let lost = sim.node(id).appliedData.values.filter { String(decoding: $0, as: UTF8.self).hasPrefix("lost") }
                try require(lost.isEmpty, sim, "uncommitted entries applied on \(id)")
            }
        }
    }

    @Test func messageCountBounds() {
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            _ = try sim.waitForLeader()
            // An election costs a handful of messages.
            try require(sim.sentCount < 60, sim, "election used \(sim.sentCount) messages")
            // Ten entries, proposed one at a time.
            try sim.run(ticks: 5)
            let before = sim.sentCount
            for n in 1...10 { try sim.commit(command(n), expected: 3) }
            let forTen = sim.sentCount - before
            try require(forTen < 10 * 3 * 2 + 200, sim, "ten entries used \(forTen) messages")
            // Idle: heartbeats only (4 per tick for 3 servers), one simulated second = 100 ticks.
            let idleStart = sim.sentCount
            try sim.run(ticks: 100)
            let idle = sim.sentCount - idleStart
            try require(idle <= 100 * 4 + 10, sim, "idle second used \(idle) messages")
        }
    }
}
