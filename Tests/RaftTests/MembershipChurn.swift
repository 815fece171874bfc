import Raft

/// A random run in which the cluster's membership changes while everything else goes wrong:
/// the generator that finds the kind of bug `SafetyBugScenarios` pins down.
///
/// Why 100,000 seeds of the older scenarios never found either safety bug: their membership
/// changes were proposed only on a settled cluster (never right after an election, never
/// during a partition), one scenario at a time; no scenario restarted a follower with a read
/// in flight; and the simulated disk always held a snapshot, so a configuration never had to
/// be rebuilt from the bootstrap one. This generator does each of those on purpose:
/// - an operator who wants a change (add a learner, promote it, remove a voter, the leader
///   included) retries it on every leader the moment one is elected, and sometimes isolates
///   the leader with a minority right after proposing;
/// - partitions of random shape, one-way cuts, crashes, restarts and snapshots;
/// - linearizable reads through the leader and through followers, including a follower
///   restarted while its read is out, then asked again after a write; each read index is
///   checked against every write committed before the read began.
/// The simulator's checker adds that each server's configuration is the one its log gives,
/// and that every change of it is counted in `configurationVersion`.
final class MembershipChurn {
    let sim: Simulation
    var random: SimRandom
    /// The change the operator is making, retried until some server applied it.
    private var pending: (change: ConfigurationChange, tries: Int)?
    private var proposedChange: (index: Index, data: [UInt8])?
    private var leaderSeen: (NodeID, Term)?
    /// Reads asked and not answered yet: where, and the highest index committed (applied by
    /// anyone) before they were asked, which their read index must cover.
    private var reads: [[UInt8]: (node: NodeID, atLeast: Index)] = [:]
    private var readCount = 0
    private var writes = 0
    private(set) var readsServed = 0
    private(set) var changesApplied = 0
    /// Changes a leader took before its term committed anything (only with the bug planted).
    private(set) var earlyChanges = 0
    private var nextID: NodeID = 6
    static let lastID: NodeID = 9

    init(seed: UInt64, planting bugs: Set<PlantedBug> = []) {
        var faults = Simulation.Faults.reliable
        if seed % 2 == 1 {
            faults = Simulation.Faults(dropRate: 0.05, duplicateRate: 0.02, delay: 1...5, reorderRate: 0.1, slowDiskRate: 0.1)
        }
        sim = Simulation(seed: seed, nodes: 5, learners: seed % 3 == 0 ? [] : [5], faults: faults) { $0.plantedBugs = bugs }
        random = SimRandom(state: seed ^ 0x3E3B_E25)
    }

    func run(rounds: Int) throws {
        for _ in 0..<rounds {
            for _ in 0..<Int.random(in: 0...2, using: &random) { write() }
            try advance(ticks: Int.random(in: 1...6, using: &random))
            try act()
            try checkReads()
        }
        try finish()
    }

    // MARK: Actions

    /// Prints what the run does (`CHORUS_SIM_SEED=N` with a test that sets it, to read a failure).
    var trace = false
    func log(_ s: @autoclosure () -> String) {
        if trace { print("t=\(sim.now) \(s())") }
    }

    private func act() throws {
        let a = Int.random(in: 0..<20, using: &random)
        log("action \(a) pending \(String(describing: pending))")
        switch a {
        case 0, 1, 2:
            chooseChange()
            proposePending()
        case 3, 4:
            // Propose, then cut the leader off with a minority at once: the change is held by
            // too few to commit, and the majority elects someone else.
            chooseChange()
            if let leader = proposePending() { isolate(leader) }
        case 5, 6:
            randomPartition()
        case 7:
            let a = random.pick(sim.ids), b = random.pick(sim.ids)
            if a != b { sim.cutOneWay(from: a, to: b) }
        case 8, 9:
            sim.heal()
        case 10:
            let up = sim.ids.filter { sim.node($0).isUp }
            if sim.ids.count - up.count < 2 { sim.crash(random.pick(up)) }
        case 11, 12:
            if let down = sim.ids.first(where: { !sim.node($0).isUp }) { sim.restart(down) }
        case 13, 14:
            try restartWithReadOut()
        case 15, 16:
            read(at: random.pick(sim.ids))
        case 17:
            sim.node(random.pick(sim.ids)).compact()
        case 18, 19:
            try changeAcrossPartition()
        default:
            break
        }
    }

    /// Ongaro's pattern, with every choice left to chance: a leader proposes a change and is
    /// cut off with a minority at once; the moment the majority elects a leader, the operator
    /// asks it for another change (the old leader's removal when it can); one of the majority
    /// may be cut off in turn; then the sides are shuffled and healed.
    private func changeAcrossPartition() throws {
        guard pending == nil, let first = sim.leader() else { return }
        chooseChange()
        guard let subject = pending?.change.node, proposePending() == first else { return }
        let others = sim.ids.filter { $0 != first }.shuffled(using: &random)
        var company = Array(others.prefix(Int.random(in: 0...max(0, (others.count - 1) / 2), using: &random)))
        if others.contains(subject), !company.contains(subject), random.chance(0.7) {
            company = [subject] + company.dropLast()
        }
        let minority = [first] + company
        let majority = sim.ids.filter { !minority.contains($0) }
        sim.partition([minority, majority])
        log("change across a partition: \(minority) | \(majority)")
        var second: NodeID?
        for _ in 0..<(40 * Simulation.microticksPerTick) where second == nil {
            try sim.step()
            if let leader = sim.leader(among: majority), sim.raft(leader).term > sim.raft(first).term {
                second = leader
            }
        }
        guard let second else { return }
        pending = nil
        let configuration = sim.raft(second).configuration
        if configuration.voters.contains(first) && configuration.voters.count > 3 {
            pending = (ConfigurationChange(.remove, first), 0)
        } else {
            chooseChange()
        }
        proposePending()
        var cut: NodeID?
        if random.chance(0.7) {
            cut = random.pick(majority.filter { $0 != second })
            sim.partition([minority, majority.filter { $0 != cut }, [cut!]])
            log("cut \(cut!) from the majority")
        }
        for _ in 0..<Int.random(in: 1...3, using: &random) { write() }
        try advance(ticks: Int.random(in: 2...12, using: &random))
        // The old leader's side meets the node cut off, or the sides are shuffled; either
        // stays long enough for the old leader to step down and campaign twice.
        if let cut, random.chance(0.5) {
            let side = minority + [cut]
            sim.partition([side, sim.ids.filter { !side.contains($0) }])
            log("partition \(side) | rest")
        } else {
            randomPartition()
        }
        try advance(ticks: Int.random(in: 20...60, using: &random))
    }

    private func write() {
        writes += 1
        _ = sim.propose(command(writes, "mc"))
    }

    /// The operator's next change, from what the leader's configuration holds now.
    private func chooseChange() {
        guard pending == nil, let leader = sim.leader() else { return }
        let configuration = sim.raft(leader).configuration
        let learners = configuration.learners.sorted()
        let voters = configuration.sortedVoters
        var options: [ConfigurationChange] = []
        if let learner = learners.first { options += [ConfigurationChange(.addVoter, learner), ConfigurationChange(.remove, learner)] }
        if nextID <= Self.lastID { options.append(ConfigurationChange(.addLearner, nextID)) }
        if voters.count > 3 {
            options.append(ConfigurationChange(.remove, random.pick(voters)))
            options.append(ConfigurationChange(.remove, leader))
        }
        guard !options.isEmpty else { return }
        let change = random.pick(options)
        if change.kind == .addLearner {
            sim.addServer(change.node)
            nextID += 1
        }
        pending = (change, 0)
    }

    /// The operator sees the old leader gone and asks the new one to remove it instead of
    /// whatever it was doing (it never learns whether the old change took effect).
    private func operatorRemoves(_ previous: NodeID, from leader: NodeID) {
        let configuration = sim.raft(leader).configuration
        guard configuration.voters.contains(previous), configuration.voters.count > 3 else { return }
        pending = (ConfigurationChange(.remove, previous), 0)
        proposedChange = nil
        log("operator: remove \(previous)")
    }

    /// Offers the pending change to the leader; the leader, if it took it.
    @discardableResult
    private func proposePending() -> NodeID? {
        guard var wanted = pending, let leader = sim.leader(), sim.node(leader).isUp else { return nil }
        wanted.tries += 1
        pending = wanted
        var accepted = false
        sim.mutateRaft(leader) { accepted = $0.proposeConfigurationChange(wanted.change) }
        guard accepted else {
            if wanted.tries > 40 { pending = nil }  // the operator gives up
            return nil
        }
        proposedChange = (sim.raft(leader).lastIndex, wanted.change.encoded())
        let raft = sim.raft(leader)
        if raft.term(at: raft.commitIndex) != raft.term { earlyChanges += 1 }
        log("proposed \(wanted.change) at \(sim.raft(leader).lastIndex) on \(leader)")
        return leader
    }

    /// Cuts `leader` off with fewer than half of the others (learners it just added or is
    /// promoting go with it, as in Ongaro's sequence).
    private func isolate(_ leader: NodeID) {
        let others = sim.ids.filter { $0 != leader }.shuffled(using: &random)
        let company = Array(others.prefix(Int.random(in: 0...max(0, (others.count - 1) / 2), using: &random)))
        let minority = [leader] + company
        sim.partition([minority, sim.ids.filter { !minority.contains($0) }])
        log("isolate \(minority)")
    }

    private func randomPartition() {
        let shuffled = sim.ids.shuffled(using: &random)
        let cut = Int.random(in: 1..<shuffled.count, using: &random)
        sim.partition([Array(shuffled[..<cut]), Array(shuffled[cut...])])
        log("partition \(shuffled[..<cut]) \(shuffled[cut...])")
    }

    /// A follower asks a read, restarts while it is out, a write commits, and the follower's
    /// new process asks another.
    private func restartWithReadOut() throws {
        guard let leader = sim.leader() else { return }
        let followers = sim.ids.filter { $0 != leader && sim.node($0).isUp }
        guard !followers.isEmpty else { return }
        let follower = random.pick(followers)
        read(at: follower)
        try advance(ticks: Int.random(in: 0...2, using: &random))
        sim.restart(follower)
        write()
        try advance(ticks: Int.random(in: 1...4, using: &random))
        read(at: follower)
    }

    private func read(at node: NodeID) {
        guard sim.node(node).isUp else { return }
        readCount += 1
        let context = command(readCount, "read")
        var taken = false
        sim.mutateRaft(node) { taken = $0.readIndex(context: context) }
        if taken { reads[context] = (node, sim.checker.applied.keys.max() ?? 0) }
    }

    // MARK: Time and checks

    /// Runs `ticks`; whenever a new leader appears, the operator retries the pending change on
    /// it at once, before its term has committed anything.
    private func advance(ticks: Int) throws {
        for _ in 0..<(ticks * Simulation.microticksPerTick) {
            try sim.step()
            if let leader = sim.leader(), leaderSeen.map({ $0 != (leader, sim.raft(leader).term) }) ?? true {
                if let previous = leaderSeen?.0, previous != leader, random.chance(0.4) { operatorRemoves(previous, from: leader) }
                leaderSeen = (leader, sim.raft(leader).term)
                log("leader \(leader) term \(sim.raft(leader).term) config \(Checker.describe(sim.raft(leader).configuration)) commit \(sim.raft(leader).commitIndex) last \(sim.raft(leader).lastIndex)")
                if pending != nil, random.chance(0.8) { proposePending() }
            }
            noteAppliedChange()
        }
    }

    private func noteAppliedChange() {
        guard let proposed = proposedChange else { return }
        if sim.ids.contains(where: { sim.node($0).appliedData[proposed.index] == proposed.data }) {
            changesApplied += 1
            proposedChange = nil
            pending = nil
        }
    }

    /// Every answered read covers every write committed before it was asked.
    private func checkReads() throws {
        for id in sim.ids {
            let node = sim.node(id)
            for state in node.readStates {
                guard let asked = reads.removeValue(forKey: state.context) else { continue }
                readsServed += 1
                if asked.node != id {
                    throw sim.checker.fail("node \(id) was handed node \(asked.node)'s read")
                }
                if state.index < asked.atLeast {
                    throw sim.checker.fail("stale read on node \(id): read index \(state.index) misses index \(asked.atLeast), committed before the read was asked")
                }
            }
            node.readStates = []
        }
    }

    /// Heals everything and requires the cluster to take a write and converge.
    private func finish() throws {
        sim.heal()
        sim.faults = .reliable
        for id in sim.ids where !sim.node(id).isUp { sim.restart(id) }
        try sim.commit(command(0, "mc-final"), expected: 1, ticks: 1500)
        // The leader that committed it (a removed server may sit in a higher term of its own,
        // which nobody hears, so "the leader of the newest term" need not exist).
        var found: NodeID?
        try sim.run(upTo: 600) {
            let leaders = sim.ids.filter { sim.node($0).isUp && sim.raft($0).role == .leader }
            found = leaders.max { sim.raft($0).commitIndex < sim.raft($1).commitIndex }
            return found != nil
        }
        guard let leader = found else { throw sim.checker.fail("no leader after the final write") }
        let members = sim.raft(leader).configuration.members
        for id in sim.ids where !members.contains(id) { sim.crash(id) }
        try sim.commit(command(1, "mc-final"), expected: members.count, ticks: 1500)
        try sim.waitForConvergence(ticks: 600)
        try checkReads()
    }
}
