import Raft
import Testing

/// Leadership transfer, membership change and ReadIndex.
@Suite struct LeadershipScenarios {
    @Test func leadershipTransfer() {
        simulate(seeds: 160) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try sim.commit(command(1), expected: 5)
            let leader = try sim.waitForLeader()
            var random = SimRandom(state: seed)
            let target = random.pick(sim.ids.filter { $0 != leader })
            // Give the target something to catch up on first.
            sim.disconnect(target)
            for n in 2...6 { try sim.commit(command(n), expected: 4) }
            sim.connect(target)
            sim.mutateRaft(leader) { $0.transferLeadership(to: target) }
            try require(sim.propose(command(99), via: leader) == nil, sim, "a leader mid-transfer accepted a proposal")
            let moved = try sim.run(upTo: 40) { sim.raft(target).role == .leader }
            try require(moved, sim, "leadership did not move to \(target)")
            try sim.commit(command(7), expected: 5)
        }
    }

    @Test func transferToAnUnreachableServerIsAbandoned() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(1), expected: 3)
            let leader = try sim.waitForLeader()
            let target = sim.ids.first { $0 != leader }!
            sim.crash(target)
            sim.mutateRaft(leader) { $0.transferLeadership(to: target) }
            try sim.run(ticks: 25)
            try require(sim.raft(leader).transferee == nil, sim, "transfer never gave up")
            try sim.commit(command(2), expected: 2)
        }
    }

    @Test func addServerAsLearnerThenPromote() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            for n in 1...5 { try sim.commit(command(n), expected: 3) }
            sim.node(sim.ids[0]).compact()
            sim.addServer(4)
            try proposeChange(sim, .init(.addLearner, 4))
            let caughtUp = try sim.run(upTo: 200) { sim.node(4).appliedIndex >= sim.raft(sim.leader()!).commitIndex }
            try require(caughtUp, sim, "learner did not catch up")
            try require(sim.raft(4).role == .follower, sim, "a learner campaigned")
            try proposeChange(sim, .init(.addVoter, 4))
            try sim.commit(command(10), expected: 4)
            try require(sim.raft(sim.leader()!).configuration.voters == [1, 2, 3, 4], sim, "voters are \(sim.raft(sim.leader()!).configuration.voters)")
            // With 4 voters, 3 are a majority: one may fail.
            let victim = sim.ids.first { $0 != sim.leader()! }!
            sim.crash(victim)
            try sim.commit(command(11), expected: 3)
        }
    }

    @Test func removeAFollower() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try sim.commit(command(1), expected: 5)
            let leader = try sim.waitForLeader()
            let removed = sim.ids.first { $0 != leader }!
            try proposeChange(sim, .init(.remove, removed))
            sim.crash(removed)
            // Four voters left: a majority is three, so one more may fail.
            let another = sim.ids.first { $0 != leader && $0 != removed }!
            sim.crash(another)
            try sim.commit(command(2), expected: 3)
        }
    }

    @Test func removeTheLeader() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(1), expected: 3)
            let leader = try sim.waitForLeader()
            try proposeChange(sim, .init(.remove, leader))
            let steppedDown = try sim.run(upTo: 50) { sim.raft(leader).role != .leader }
            try require(steppedDown, sim, "removed leader kept leading")
            let next = try sim.waitForLeader(among: sim.ids.filter { $0 != leader })
            try require(next != leader, sim, "removed server leads again")
            try sim.commit(command(2), expected: 2)
            try sim.run(ticks: 60)
            try require(sim.raft(leader).role != .leader, sim, "removed server took over")
        }
    }

    /// Reads through the leader, or through a follower (which asks its leader to confirm the
    /// read and name its commit index): the read index covers every write committed before
    /// the read began, across leader crashes and slow disks. Most reads are answered.
    @Test(arguments: [false, true])
    func readIndexIsLinearizable(throughAFollower: Bool) {
        var served = 0, asked = 0
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 5, faults: .init(delay: 1...4, slowDiskRate: 0.2))
            var random = SimRandom(state: seed)
            for round in 0..<6 {
                let index = try sim.commit(command(round), expected: 3)
                let leader = try sim.waitForLeader()
                let reader = throughAFollower ? random.pick(sim.ids.filter { $0 != leader && sim.node($0).isUp }) : leader
                let context = command(round, "read")
                var taken = false
                sim.mutateRaft(reader) { taken = $0.readIndex(context: context) }
                guard taken else { continue }  // a follower that knows no leader yet
                asked += 1
                if try sim.run(upTo: 30, until: { sim.node(reader).readStates.contains { $0.context == context } }) {
                    served += 1
                    let state = sim.node(reader).readStates.first { $0.context == context }!
                    try require(state.index >= index, sim, "read index \(state.index) on \(reader) misses write \(index)")
                }
                if random.chance(0.3) { sim.crash(leader); try sim.run(ticks: 5); sim.restart(leader) }
            }
        }
        #expect(served * 10 >= asked * 7, "only \(served) of \(asked) reads were answered")
    }

    /// A follower cut off with its old leader asks that leader, which hears from no majority:
    /// no read is confirmed for it, while the majority elects and writes.
    @Test func aFollowerCutOffWithItsLeaderGetsNoRead() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try sim.commit(command(1), expected: 5)
            let leader = try sim.waitForLeader()
            let follower = sim.ids.first { $0 != leader }!
            let others = sim.ids.filter { $0 != leader && $0 != follower }
            sim.partition([[leader, follower], others])
            sim.mutateRaft(follower) { _ = $0.readIndex(context: [7]) }
            _ = try sim.waitForLeader(among: others)
            try sim.run(ticks: 30)
            try require(sim.node(follower).readStates.isEmpty, sim, "a read was confirmed by a leader without a majority")
        }
    }

    @Test func readIndexIsRefusedByAnIsolatedLeader() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(1), expected: 3)
            let leader = try sim.waitForLeader()
            sim.disconnect(leader)
            sim.mutateRaft(leader) { _ = $0.readIndex(context: [7]) }
            try sim.run(ticks: 30)
            try require(sim.node(leader).readStates.isEmpty, sim, "a leader without a majority confirmed a read")
        }
    }
}

/// Proposes a configuration change through the leader and waits until it is applied
/// everywhere reachable.
func proposeChange(_ sim: Simulation, _ change: ConfigurationChange) throws {
    for _ in 0..<20 {
        let leader = try sim.waitForLeader()
        var accepted = false
        sim.mutateRaft(leader) { accepted = $0.proposeConfigurationChange(change) }
        if accepted {
            let index = sim.raft(leader).lastIndex
            let done = try sim.run(upTo: 100) { sim.appliedCount(index, change.encoded()) >= 2 }
            if done { return }
        } else {
            try sim.run(ticks: 5)
        }
    }
    throw sim.checker.fail("configuration change \(change) never applied")
}
