import Raft
import Testing

/// Random crashes, restarts, disconnections and proposals all at once (MIT's churn tests),
/// with periodic compaction so snapshots are part of the mix.
@Suite struct ChurnScenarios {
    @Test func reliableChurn() {
        simulate(seeds: 60) { seed in
            try churn(Simulation(seed: seed, nodes: 5), seed: seed, rounds: 60)
        }
    }

    @Test func unreliableChurn() {
        simulate(seeds: 60) { seed in
            try churn(Simulation(seed: seed, nodes: 5, faults: .unreliable), seed: seed, rounds: 60)
        }
    }
}

func churn(_ sim: Simulation, seed: UInt64, rounds: Int) throws {
    var random = SimRandom(state: seed ^ 0xC4)
    var proposed = 0
    for _ in 0..<rounds {
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            proposed += 1
            _ = sim.propose(command(proposed, "churn"))
        }
        try sim.run(ticks: Int.random(in: 1...8, using: &random))
        let id = random.pick(sim.ids)
        switch Int.random(in: 0..<10, using: &random) {
        case 0, 1: sim.crash(id)
        case 2, 3: if !sim.node(id).isUp { sim.restart(id) }
        case 4, 5: sim.disconnect(id)
        case 6, 7: sim.connect(id)
        case 8: sim.node(id).compact()
        default: break
        }
        // Keep a majority able to make progress most of the time.
        let healthy = sim.ids.filter { sim.node($0).isUp && !sim.isolated.contains($0) }
        if healthy.count < 3 {
            let sick = sim.ids.filter { !healthy.contains($0) }
            let back = random.pick(sick)
            if !sim.node(back).isUp { sim.restart(back) }
            sim.connect(back)
        }
    }
    for id in sim.ids where !sim.node(id).isUp { sim.restart(id) }
    sim.heal()
    sim.faults = .reliable
    try sim.commit(command(0, "final"), expected: 5, ticks: 1000)
    try sim.waitForConvergence()
}
