import Raft
import Testing

/// `MembershipChurn` over many seeds: every invariant holds on the core as it is, and each
/// bug planted back is found by some seed within a stated number of seeds.
@Suite struct MembershipChurnScenarios {
    @Test func membershipChurn() {
        var served = 0, applied = 0
        simulate(seeds: 120) { seed in
            let churn = MembershipChurn(seed: seed)
            try churn.run(rounds: 50)
            served += churn.readsServed
            applied += churn.changesApplied
        }
        // The run must actually change membership and serve reads, or it tests nothing.
        #expect(applied > 120, "only \(applied) membership changes applied")
        #expect(served > 300, "only \(served) reads served")
    }

    /// The first seeds that catch each planted bug, kept as regression cases: with the bug they
    /// fail, without it they pass. (`plantedBugsAreFoundBySearch` finds such seeds anew.)
    static let catchingSeeds: [PlantedBug: [UInt64]] = [
        .configurationChangeBeforeTermCommits: [14, 44, 70],
        .forwardedReadNamesRepeat: [13, 53],
        .restoreKeepsConfigurationVersion: [2, 4, 9],
        .recomputeFromCurrentConfiguration: [1, 2, 3],
    ]

    /// The core's planted bugs this simulation looks for. Applying before commit is the
    /// node's to catch: its invariants stop it first (`ReplicaSimulationTests`); here the
    /// core's own precondition would trap.
    static let churnBugs = PlantedBug.allCases.filter { $0 != .applyBeforeCommit }

    @Test(arguments: churnBugs)
    func plantedBugIsCaughtByItsSeeds(_ bug: PlantedBug) throws {
        let seeds = try #require(Self.catchingSeeds[bug])
        for seed in seeds {
            #expect(throws: SimulationFailure.self, "seed \(seed) no longer catches \(bug)") {
                try MembershipChurn(seed: seed, planting: [bug]).run(rounds: 50)
            }
            #expect(throws: Never.self) { try MembershipChurn(seed: seed).run(rounds: 50) }
        }
    }

    /// A search from seed 1: each planted bug is caught within `searchLimit` seeds (at the
    /// time of writing by seed 14, 13, 2 and 1; see docs/TESTING.md). It stops at the first.
    @Test(arguments: churnBugs)
    func plantedBugsAreFoundBySearch(_ bug: PlantedBug) {
        var caught: (seed: UInt64, failure: SimulationFailure)?
        for seed in UInt64(1)...Self.searchLimit where caught == nil {
            do {
                try MembershipChurn(seed: seed, planting: [bug]).run(rounds: 50)
            } catch let failure as SimulationFailure {
                // Only the failure the bug should cause counts (a planted bug may also cost
                // liveness, which finds nothing new).
                if Self.signature(of: bug).contains(where: failure.reason.contains) { caught = (seed, failure) }
            } catch {
                Issue.record("seed \(seed): \(error)")
                return
            }
        }
        guard let caught else {
            Issue.record("\(bug) was not caught in \(Self.searchLimit) seeds")
            return
        }
        print("planted \(bug): caught by seed \(caught.seed): \(caught.failure.reason)")
    }

    static let searchLimit: UInt64 = 100

    /// What the checker says when it catches `bug`.
    static func signature(of bug: PlantedBug) -> [String] {
        switch bug {
        case .configurationChangeBeforeTermCommits: ["safety", "completeness", "matching"]
        case .forwardedReadNamesRepeat: ["stale read"]
        case .restoreKeepsConfigurationVersion: ["without a new configurationVersion"]
        case .recomputeFromCurrentConfiguration: ["is not its log's"]
        case .applyBeforeCommit: []
        }
    }
}
