import Raft
import Testing

/// The two safety bugs a review found in this core, each as the exact sequence that triggers
/// it: with the fix the sequence is harmless, and with the bug planted back (test builds
/// only, `PlantedBug`) the same sequence loses a committed write or serves a stale read, so
/// these scenarios fail on the code as it was.
@Suite struct SafetyBugScenarios {
    // MARK: 1. A configuration change before the new leader's term commits

    struct ConfigurationOutcome {
        /// Whether the new leader accepted a change before an entry of its term committed.
        var acceptedEarly: Bool
        var violations: [String]
        var net: HandNetwork
    }

    /// Voters 1–4 and learner 5 (the sequence of Ongaro's raft-dev post of 2015, as the issue
    /// gives it):
    /// 1. Leader 1 (term 1) appends "promote 5", which only node 5 receives; then {1,5} and
    ///    {2,3,4} are cut apart.
    /// 2. Node 2 wins term 2 with 3 and 4; its no-op does not reach node 4, so nothing of
    ///    term 2 commits. An operator asks node 2 to remove node 1.
    /// 3. With the bug, node 2 appends "remove 1" (voters {2,3,4}: two make a majority), and
    ///    with node 3 commits it and two writes.
    /// 4. Node 1 steps down (check-quorum), and with node 4 (whose log is behind node 1's)
    ///    and node 5 wins term 3 under voters 1–5; healed, it overwrites what 2 and 3
    ///    committed.
    func configurationChangeBeforeTermCommits(planted: Bool) -> ConfigurationOutcome {
        let net = HandNetwork(voters: [1, 2, 3, 4], learners: [5]) { options in
            if planted { options.plantedBugs = [.configurationChangeBeforeTermCommits] }
        }
        net.elect(1, among: [1, 2, 3, 4])
        #expect(net[1].role == .leader && net[1].term == 1)
        net.propose(1, "w1")
        net.tick(1)  // a heartbeat carries the commit index to everyone
        #expect(net.cores.values.allSatisfy { $0.commitIndex == 2 && $0.lastIndex == 2 })

        net.partition([[1, 5], [2, 3, 4]])
        #expect(net.with(1) { $0.proposeConfigurationChange(ConfigurationChange(.addVoter, 5)) })
        #expect(net[5].configuration.voters == [1, 2, 3, 4, 5])

        // Node 2's no-op (index 3, term 2) reaches node 3 but not node 4.
        net.partition([[1, 5], [2, 3, 4]]) { m in
            if case .append = m.kind { m.from == 2 && m.to == 4 } else { false }
        }
        net.elect(2, among: [2, 3, 4])
        #expect(net[2].role == .leader && net[2].term == 2)
        #expect(net[2].commitIndex == 2 && net[4].lastIndex == 2)
        net.partition([[1, 5], [2, 3], [4]])

        let acceptedEarly = net.with(2) { $0.proposeConfigurationChange(ConfigurationChange(.remove, 1)) }
        net.propose(2, "x1")
        net.propose(2, "x2")

        // Node 1 hears only node 5 and steps down at its second quorum check (the first
        // still counts the answers from before the cut).
        net.tick(1, times: 20)
        #expect(net[1].role == .follower)
        net.partition([[1, 4, 5], [2, 3]])
        // The first try learns term 2 from node 4's refusal; the second wins term 3.
        net.elect(1, among: [1, 4, 5])
        if net[1].role != .leader { net.elect(1, among: [1, 4, 5]) }
        net.heal()
        net.propose(1, "after-heal")
        net.tick(1)
        return ConfigurationOutcome(acceptedEarly: acceptedEarly, violations: net.safetyViolations, net: net)
    }

    @Test func aNewLeaderProposesNoChangeBeforeItsTermCommits() {
        let outcome = configurationChangeBeforeTermCommits(planted: false)
        #expect(!outcome.acceptedEarly)
        #expect(outcome.violations == [])
        // Once an entry of its term has committed, the leader takes changes again.
        let net = outcome.net
        let leader = net.cores.values.first { $0.isLeader }!.id
        #expect(net[leader].term(at: net[leader].commitIndex) == net[leader].term)
        #expect(net.with(leader) { $0.proposeConfigurationChange(ConfigurationChange(.remove, 4)) })
    }

    @Test func plantedBackTheChangeLosesCommittedWrites() {
        let outcome = configurationChangeBeforeTermCommits(planted: true)
        #expect(outcome.acceptedEarly)
        #expect(outcome.net[1].role == .leader && outcome.net[1].term == 3)
        #expect(!outcome.violations.isEmpty, "the planted bug lost nothing: the scenario no longer reproduces it")
    }

    // MARK: 2. Follower read names reused after a restart

    /// Leader 1 of 1, 2 and 3. Follower 2 forwards a read; the round that serves it stalls
    /// (its heartbeat answers are held back). Node 2 restarts in the same term, a write
    /// commits and is acknowledged, and node 2's new process forwards a read of its own, which
    /// its application names as the first one was named. The stalled round then completes:
    /// its answer, at the index from before the write, must not serve the new read.
    func readAcrossRestart(planted: Bool) -> (write: Index, served: [ReadState]) {
        let net = HandNetwork(voters: [1, 2, 3]) { options in
            if planted { options.plantedBugs = [.forwardedReadNamesRepeat] }
        }
        net.elect(1, among: [1, 2, 3])
        net.propose(1, "w1")
        net.tick(1)
        let applicationContext: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1]

        net.hold = { m in if case .heartbeatResponse(let context) = m.kind { context != nil } else { false } }
        #expect(net.with(2) { $0.readIndex(context: applicationContext) })
        #expect(net.held.count == 2, "the round's heartbeat answers are held: \(net.held)")

        net.restart(2)
        net.tick(1)  // node 2's new process hears its leader again, in the same term
        #expect(net[2].leader == 1 && net[2].term == 1)
        let write = net.propose(1, "w2")!
        #expect(net[1].commitIndex == write)

        #expect(net.with(2) { $0.readIndex(context: applicationContext) })
        net.hold = { _ in false }
        net.release()
        return (write, net.reads[2] ?? [])
    }

    @Test func aReadFromBeforeARestartServesNoReadAfterIt() {
        let (write, served) = readAcrossRestart(planted: false)
        #expect(served.count == 1)
        #expect(served.allSatisfy { $0.index >= write }, "stale read: \(served) misses write \(write)")
    }

    @Test func plantedBackRepeatedNamesServeAStaleRead() {
        let (write, served) = readAcrossRestart(planted: true)
        #expect(served.first.map { $0.index < write } == true, "the planted bug served no stale read: \(served)")
    }
}
