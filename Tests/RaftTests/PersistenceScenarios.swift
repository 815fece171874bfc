import Raft
import Testing

/// Crashes that lose everything not on disk, ported from MIT 6.5840's 3C tests.
@Suite struct PersistenceScenarios {
    @Test func restartLeaderFollowersAndAll() {
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            try sim.commit(command(11), expected: 3)
            for id in sim.ids { sim.restart(id) }
            try sim.commit(command(12), expected: 3)
            let leader1 = try sim.waitForLeader()
            sim.restart(leader1)
            try sim.commit(command(13), expected: 3)
            let leader2 = try sim.waitForLeader()
            sim.crash(leader2)
            try sim.commit(command(14), expected: 2)
            sim.restart(leader2)
            try sim.run(ticks: 20)
            let follower = sim.ids.first { $0 != (sim.leader() ?? 0) }!
            sim.crash(follower)
            try sim.commit(command(15), expected: 2)
            sim.restart(follower)
            try sim.commit(command(16), expected: 3)
        }
    }

    @Test func crashesUnderSlowDisks() {
        var faults = Simulation.Faults.reliable
        faults.slowDiskRate = 0.3
        simulate(seeds: 120) { seed in
            let sim = Simulation(seed: seed, nodes: 5, faults: faults)
            var random = SimRandom(state: seed)
            for n in 0..<12 {
                try sim.commit(command(n), expected: 3, ticks: 600)
                let victim = random.pick(sim.ids)
                sim.crash(victim)
                try sim.run(ticks: Int.random(in: 0...15, using: &random))
                sim.restart(victim)
            }
            try sim.commit(command(100), expected: 5, ticks: 600)
        }
    }

    /// Figure 8 of the Raft paper: leaders crash right after proposing, so entries of old
    /// terms sit on some servers; the commit rule must never let them be lost once applied.
    @Test func figure8() {
        simulate(seeds: 8) { seed in
            let sim = Simulation(seed: seed, nodes: 5)
            try runFigure8(sim, seed: seed, rounds: 1000)
        }
    }

    @Test func figure8Unreliable() {
        simulate(seeds: 8) { seed in
            let sim = Simulation(seed: seed, nodes: 5, faults: .unreliable)
            try runFigure8(sim, seed: seed, rounds: 500)
        }
    }
}

/// The body of the Figure 8 tests: MIT's loop of propose, wait a little, crash the leader,
/// keep a majority up.
func runFigure8(_ sim: Simulation, seed: UInt64, rounds: Int) throws {
    var random = SimRandom(state: seed ^ 0xF18)
    try sim.commit(command(0, "f8"), expected: 1, ticks: 800)
    var up = sim.ids.count
    for round in 1...rounds {
        var leader: NodeID?
        for id in sim.ids where sim.node(id).isUp {
            if sim.propose(command(round, "f8"), via: id) != nil { leader = id }
        }
        let wait = random.chance(0.1) ? Int.random(in: 0..<50, using: &random) : Int.random(in: 0..<2, using: &random)
        try sim.run(ticks: wait)
        if let leader, sim.node(leader).isUp {
            sim.crash(leader)
            up -= 1
        }
        if up < 3 {
            let down = sim.ids.filter { !sim.node($0).isUp }
            let id = random.pick(down)
            sim.restart(id)
            up += 1
        }
    }
    for id in sim.ids where !sim.node(id).isUp { sim.restart(id) }
    sim.faults = .reliable
    try sim.commit(command(rounds + 1, "f8"), expected: sim.ids.count, ticks: 1000)
}
