import Raft
import Testing

/// The checker itself must catch a broken core, or a green run proves nothing.
@Suite struct CheckerScenarios {
    /// With the commit rule broken (test-only option: two of five replicas suffice, of any
    /// term), some seed loses an applied entry and the checker reports it.
    @Test func checkerCatchesBrokenCommitRule() {
        var caught: SimulationFailure?
        for seed in UInt64(1)...400 where caught == nil {
            let sim = Simulation(seed: seed, nodes: 5, faults: .unreliable) { $0.unsafeCommitQuorum = 2 }
            do {
                try runFigure8(sim, seed: seed, rounds: 80)
            } catch let failure as SimulationFailure {
                if failure.reason.contains("safety") || failure.reason.contains("completeness") || failure.reason.contains("matching") {
                    caught = failure
                }
            } catch {
                // Anything but the checker's own report is a fault of the test, not a catch.
                Issue.record("seed \(seed): \(error)")
            }
        }
        #expect(caught != nil, "the checker never noticed entries committed without a majority")
    }

    @Test func checkerCatchesTwoLeadersInOneTerm() throws {
        var checker = Checker(seed: 0)
        let sim = Simulation(seed: 1, nodes: 3)
        _ = try sim.waitForLeader()
        let leader = sim.leader()!
        let other = sim.ids.first { $0 != leader }!
        checker.leaders[sim.raft(leader).term] = other
        #expect(throws: SimulationFailure.self) { try checker.checkNode(sim.node(leader)) }
    }
}
