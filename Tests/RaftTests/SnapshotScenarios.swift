import Raft
import Testing

/// Compaction and InstallSnapshot (MIT 6.5840's 3D tests).
@Suite struct SnapshotScenarios {
    /// A follower that misses entries the others compacted away catches up by snapshot.
    @Test func installSnapshot() {
        simulate(seeds: 120) { seed in
            try snapshotCatchUp(Simulation(seed: seed, nodes: 3), seed: seed)
        }
    }

    @Test func installSnapshotUnreliable() {
        simulate(seeds: 80) { seed in
            try snapshotCatchUp(Simulation(seed: seed, nodes: 3, faults: .unreliable), seed: seed)
        }
    }

    @Test func installSnapshotAfterCrashes() {
        simulate(seeds: 80) { seed in
            let sim = Simulation(seed: seed, nodes: 3)
            var random = SimRandom(state: seed)
            for round in 0..<8 {
                let victim = random.pick(sim.ids)
                sim.crash(victim)
                for n in 0..<10 { try sim.commit(command(round * 100 + n, "snap"), expected: 2) }
                for id in sim.ids where sim.node(id).isUp { sim.node(id).compact() }
                sim.restart(victim)
                try sim.commit(command(round, "after"), expected: 3, ticks: 600)
            }
            try sim.waitForConvergence()
            let hashes = Set(sim.ids.map { sim.node($0).appliedHash })
            try require(hashes.count == 1, sim, "replicas disagree after snapshots")
        }
    }
}

func snapshotCatchUp(_ sim: Simulation, seed: UInt64) throws {
    try sim.commit(command(0, "base"), expected: 3, ticks: 600)
    let leader = try sim.waitForLeader()
    let lagging = sim.ids.first { $0 != leader }!
    sim.disconnect(lagging)
    for n in 1...30 { try sim.commit(command(n, "snap"), expected: 2, ticks: 600) }
    for id in sim.ids where id != lagging { sim.node(id).compact() }
    let compactedTo = sim.node(sim.ids.first { $0 != lagging }!).storage.snapshotValue.metadata.index
    try require(compactedTo > sim.node(lagging).appliedIndex, sim, "nothing compacted past the follower")
    sim.connect(lagging)
    sim.faults = .reliable
    try sim.commit(command(99, "after"), expected: 3, ticks: 800)
    try require(sim.node(lagging).storage.snapshotValue.metadata.index >= compactedTo, sim, "the follower caught up without the snapshot")
    try sim.waitForConvergence()
    let hashes = Set(sim.ids.map { sim.node($0).appliedHash })
    try require(hashes.count == 1, sim, "replicas disagree after InstallSnapshot")
}
