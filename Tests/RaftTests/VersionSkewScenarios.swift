import Raft
import Testing

/// Members running different builds (`VersionModel`): the cluster version rises only when all
/// agree, a rolling upgrade never lets a server meet an entry it does not know, a server
/// started on an older build after the rise stops or is refused (never misapplies), and the
/// checks catch each rule broken on purpose.
@Suite struct VersionSkewScenarios {
    /// Five servers of the release before cluster versions are upgraded one at a time (a
    /// clean stop: its application state written out) under proposals and lossy links, with a
    /// downgrade now and then before the rise. Once all run the new build the version rises
    /// by itself and version-2 commands apply everywhere; a server downgraded afterwards is
    /// refused and misapplies nothing.
    @Test func aRollingUpgradeNeverLetsAServerMeetWhatItDoesNotKnow() {
        simulate(seeds: 12) { seed in try Self.rollingUpgrade(seed: seed) }
    }

    /// A build one version older whose application state is gone (rebuilt from the log) stops
    /// at the entry that raised the version, before applying anything of its batch; one whose
    /// snapshot already holds the new version refuses to start.
    @Test func anOlderBuildStopsAtTheEntryItDoesNotKnow() {
        simulate(seeds: 8) { seed in
            let sim = Simulation(seed: seed, nodes: 3, faults: .mild)
            let versions = VersionModel(builds: [1: 2, 2: 2, 3: 2])
            sim.versions = versions
            _ = try sim.waitForLeader()
            try require(try sim.run(upTo: 600) { sim.ids.allSatisfy { sim.node($0).clusterVersion == 2 } }, sim, "the version did not rise")
            for n in 0..<5 { try sim.commit(VersionModel.versioned(2, n), expected: 3) }
            let raisedAt = try #require(sim.node(1).appliedData.first { VersionModel.kind($0.value) == .raise(2) }?.key)
            // Node 3 on the older build, its application state lost: it replays from the log.
            versions.downgradedAfterRaise.insert(3)
            sim.crash(3, closingConnections: true)
            versions.builds[3] = 1
            sim.restart(3)
            try sim.run(ticks: 100)
            try require(versions.halted[3] == raisedAt, sim, "node 3 stopped at \(String(describing: versions.halted[3])), not at the raise \(raisedAt)")
            try require(sim.node(3).appliedIndex < raisedAt, sim, "node 3 applied \(sim.node(3).appliedIndex), past the raise at \(raisedAt)")
            // The others go on.
            try sim.commit(VersionModel.versioned(2, 99), expected: 2)
        }
    }

    /// The rule broken: the leader leaves a member out when it decides. Some seed raises the
    /// version while that member still runs the old build, and the check says so.
    @Test func theChecksCatchARaiseThatForgetsAMember() {
        var caught: SimulationFailure?
        for seed in UInt64(1)...20 where caught == nil {
            do {
                try Self.rollingUpgrade(seed: seed) { $0.plantedIgnoredMember = 5 }
            } catch let failure as SimulationFailure {
                if failure.reason.contains("while node 5 runs") || failure.reason.contains("stopped at entry") || failure.reason.contains("safety") { caught = failure }
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
        #expect(caught != nil, "a raise that ignored a member went unnoticed")
    }

    /// The transport rules broken: entries reach (and messages are taken from) a server that
    /// runs the previous release after the rise. It misapplies them, and the checker sees two
    /// states at one index.
    @Test func theChecksCatchEntriesSentToAnOlderRelease() {
        var caught: SimulationFailure?
        for seed in UInt64(1)...20 where caught == nil {
            do {
                try Self.rollingUpgrade(seed: seed) { $0.plantedNoFilter = true }
            } catch let failure as SimulationFailure {
                if failure.reason.contains("safety") { caught = failure }
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
        #expect(caught != nil, "entries sent to the previous release went unnoticed")
    }

    static func rollingUpgrade(seed: UInt64, plant: (VersionModel) -> Void = { _ in }) throws {
        let sim = Simulation(seed: seed, nodes: 5, faults: .mild)
        let versions = VersionModel(builds: Dictionary(uniqueKeysWithValues: (1...5).map { ($0, 1) }))
        versions.legacy = Set(1...5)
        plant(versions)
        sim.versions = versions
        var n = 0
        func load(_ rounds: Int) throws {
            for _ in 0..<rounds {
                n += 1
                _ = sim.propose(command(n))
                try sim.run(ticks: 3)
            }
        }
        /// A clean stop (the application state written out), then the process on `build`.
        func replace(_ id: NodeID, build: UInt32) throws {
            sim.node(id).compact()
            sim.crash(id, closingConnections: true)
            versions.builds[id] = build
            if build == 1 { versions.legacy.insert(id) } else { versions.legacy.remove(id) }
            sim.restart(id)
        }
        _ = try sim.waitForLeader()
        try load(20)
        var order = Array(UInt64(1)...5).shuffled(using: &sim.random)
        // Now and then a server goes back before the last is upgraded: allowed, and harmless.
        let downgrade = sim.random.chance(0.5) ? order[1] : nil
        while let id = order.first {
            order.removeFirst()
            try replace(id, build: 2)
            try load(10)
            if id == downgrade {
                try replace(id, build: 1)
                try load(10)
                try replace(id, build: 2)
            }
            if sim.random.chance(0.3), let leader = sim.leader() {
                sim.partition([[leader], sim.ids.filter { $0 != leader }])
                try load(10)
                sim.heal()
            }
            if !order.isEmpty {
                try require(sim.ids.allSatisfy { sim.node($0).clusterVersion == 1 }, sim, "the version rose while a server ran the previous release")
            }
        }
        sim.heal()
        try require(try sim.run(upTo: 2_000) { sim.ids.allSatisfy { sim.node($0).clusterVersion == 2 } }, sim,
                    "the version did not rise after every server was upgraded: \(sim.ids.map { sim.node($0).clusterVersion })")
        for k in 0..<5 { try sim.commit(VersionModel.versioned(2, k), expected: 5) }

        // A downgrade after the rise: the previous release is refused, and gets nothing. (It
        // would misapply what its own log holds unapplied: the node is stopped caught up.)
        try sim.waitForConvergence(ticks: 1_000)
        let late = sim.random.pick(sim.ids)
        versions.downgradedAfterRaise.insert(late)
        try replace(late, build: 1)
        for k in 5..<15 { try sim.commit(VersionModel.versioned(2, k), expected: 4) }
        try load(20)
        try sim.run(ticks: 100)
    }
}

extension Simulation.Faults {
    /// Some loss, duplication and reordering, and slow disks: enough to shuffle what each
    /// server hears when, without drowning a scenario's liveness expectations.
    static let mild = Simulation.Faults(dropRate: 0.03, duplicateRate: 0.02, delay: 1...4, reorderRate: 0.05, slowDiskRate: 0.05)
}
