import Raft
import Testing

/// Peers that lie. Two fault models, one scenario each:
///
/// 1. **A buggy minority** (`buggyMinorityIsRefusedAndHarmless`). Two of five servers run an
///    honest core, but what they send is corrupted on the way as a buggy or half-upgraded
///    peer could corrupt it: beside each genuine message they may send a copy with an
///    extreme term, an index past 2^62, a wrong recipient, sender 0 or the recipient's own
///    id, a term in the payload above the message's, entries out of sequence or of a term
///    above the message's, an oversized ReadIndex context, an acknowledgement past anything
///    the leader sent; and they replay their own stale messages. Every detectable lie must
///    be refused (the recipient's `step` returns a `Refusal`), no honest message may be
///    refused, and every safety invariant of the simulator's checker must hold, with the
///    cluster still committing. Not in this model: well-formed lies about a server's own
///    state (a vote granted twice, an acknowledgement of entries it lacks, a leader's
///    entries rewritten); Raft is not Byzantine-tolerant, and mutual TLS (not this core)
///    is what keeps strangers from speaking as a member.
/// 2. **Arbitrary messages** (`arbitraryMessagesNeverTrap`). Liars send messages of every
///    kind with random and extreme fields, any sender (members' ids included), any recipient,
///    random entries and snapshots. Safety cannot hold against a forged leader, so only one
///    thing is asserted: no honest core traps (an overflow, an out-of-bounds index, a
///    storage precondition on what it asks to persist), whatever arrives.
@Suite struct AdversarialScenarios {
    @Test func buggyMinorityIsRefusedAndHarmless() {
        var refused: [String: Int] = [:]
        simulate(seeds: 600) { seed in
            let sim = Simulation(seed: seed, nodes: 5, faults: seed % 2 == 0 ? .reliable : .unreliable)
            var random = SimRandom(state: seed ^ 0xBAD)
            sim.liars = Set(random.subset(of: sim.ids, count: 2))
            var sent: [Message] = []
            sim.tamper = { message, sim in
                defer {
                    sent.append(message)
                    if sent.count > 64 { sent.removeFirst(32) }
                }
                var out: [(Message, Simulation.Origin)] = [(message, .honest)]
                if random.chance(0.4) { out.append((Self.detectableLie(about: message, sim: sim, random: &random), .mustRefuse)) }
                if random.chance(0.1), !sent.isEmpty { out.append((random.pick(sent), .mayPass)) }
                if random.chance(0.1), let lie = Self.ackBeyondLast(message, sim: sim, random: &random) { out.append((lie, .mayPass)) }
                return out
            }
            var proposed = 0
            for _ in 0..<30 {
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    proposed += 1
                    _ = sim.propose(command(proposed, "adv"))
                }
                try sim.run(ticks: Int.random(in: 1...8, using: &random))
                if random.chance(0.15) { sim.node(random.pick(sim.ids)).compact() }
            }
            sim.faults = .reliable
            try sim.commit(command(0, "final"), expected: 5, ticks: 1000)
            try sim.waitForConvergence()
            refused.merge(sim.refusals, uniquingKeysWith: +)
        }
        // Each kind of lie was seen and refused somewhere in the run.
        for reason in ["misaddressed", "unknown_sender", "term_out_of_range", "out_of_range", "malformed_entries", "too_large"] {
            #expect(refused[reason, default: 0] > 0, "no message was refused as \(reason): \(refused)")
        }
    }

    @Test func arbitraryMessagesNeverTrap() {
        var refusedTotal = 0
        var violations = 0
        simulate(seeds: 1_500) { seed in
            let size = seed % 3 == 0 ? 3 : 5
            let sim = Simulation(seed: seed, nodes: size, faults: .unreliable)
            var random = SimRandom(state: seed ^ 0xF00D)
            let liars = random.subset(of: sim.ids, count: size / 2)
            sim.requireRefusals = false
            for round in 0..<40 {
                _ = sim.propose(command(round, "arb"))
                for _ in 0..<Int.random(in: 1...12, using: &random) {
                    let (message, destination) = Self.arbitraryMessage(from: random.pick(liars), sim: sim, random: &random)
                    sim.inject(message, origin: .mayPass, destination: destination)
                }
                for _ in 0..<(Int.random(in: 1...5, using: &random) * Simulation.microticksPerTick) {
                    do {
                        try sim.step()
                    } catch is SimulationFailure {
                        // Forged leaders can break safety (and honest servers rightly refuse
                        // answers to what a forger sent in their name); this model only asks
                        // that nothing traps.
                        violations += 1
                    }
                }
                if random.chance(0.1) { sim.node(random.pick(sim.ids)).compact() }
            }
            refusedTotal += sim.refusals.values.reduce(0, +)
        }
        #expect(refusedTotal > 0)
        #expect(violations > 0, "forged leaders never broke an invariant: the liars are too timid to test anything")
    }

    // MARK: Lies a buggy peer could tell

    /// A copy of `m` with one thing wrong that validation can see.
    static func detectableLie(about m: Message, sim: Simulation, random: inout SimRandom) -> Message {
        var lie = m
        let limits = MessageLimits()
        let recipientTerm = sim.node(m.to).raft?.term ?? m.term
        let members = sim.ids
        switch Int.random(in: 0..<7, using: &random) {
        case 0:
            lie.term = random.pick([UInt64.max, UInt64.max - 1, limits.maxValue + 1,
                                    max(m.term, recipientTerm) + limits.maxTermStep + 1_000 + UInt64.random(in: 0..<1000, using: &random)])
        case 1:
            lie.to = random.pick(members.filter { $0 != m.to })
        case 2:
            lie.from = random.pick([0, m.to])
        case 3:
            if let changed = withIndexOutOfRange(m, random: &random) { return changed }
            lie.term = UInt64.max
        case 4:
            if let changed = withMalformedEntries(m, random: &random) { return changed }
            lie.from = 0
        case 5:
            // A term inside the payload above the message's own.
            switch m.kind {
            case let .preVote(lastIndex, _): lie.kind = .preVote(lastIndex: lastIndex, lastTerm: m.term + 1)
            case let .vote(lastIndex, _, transfer): lie.kind = .vote(lastIndex: lastIndex, lastTerm: m.term + 1, transfer: transfer)
            case let .appendResponse(index, reject, hintIndex, _): lie.kind = .appendResponse(index: index, reject: reject, hintIndex: hintIndex, hintTerm: m.term + 1)
            default: lie.to = m.from  // addressed to its own sender, delivered elsewhere
            }
        default:
            let big = [UInt8](repeating: 7, count: limits.maxContextBytes + 1 + Int.random(in: 0..<100, using: &random))
            switch m.kind {
            case let .heartbeat(commit, _): lie.kind = .heartbeat(commit: commit, context: big)
            case .heartbeatResponse: lie.kind = .heartbeatResponse(context: big)
            case .readIndex: lie.kind = .readIndex(context: big)
            default: lie.term = limits.maxValue + 1
            }
        }
        return lie
    }

    static func withIndexOutOfRange(_ m: Message, random: inout SimRandom) -> Message? {
        let huge = random.pick([UInt64.max, MessageLimits().maxValue + 1, UInt64.max - 3])
        var lie = m
        switch m.kind {
        case let .preVote(_, lastTerm): lie.kind = .preVote(lastIndex: huge, lastTerm: lastTerm)
        case let .vote(_, lastTerm, transfer): lie.kind = .vote(lastIndex: huge, lastTerm: lastTerm, transfer: transfer)
        case let .append(prevIndex, prevTerm, entries, commit):
            lie.kind = random.chance(0.5)
                ? .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: huge)
                : .append(prevIndex: huge, prevTerm: prevTerm, entries: [], commit: commit)
        case let .appendResponse(_, reject, hintIndex, hintTerm):
            lie.kind = .appendResponse(index: huge, reject: reject, hintIndex: hintIndex, hintTerm: hintTerm)
        case let .heartbeat(_, context): lie.kind = .heartbeat(commit: huge, context: context)
        default: return nil
        }
        return lie
    }

    static func withMalformedEntries(_ m: Message, random: inout SimRandom) -> Message? {
        guard case let .append(prevIndex, prevTerm, entries, commit) = m.kind else { return nil }
        var lie = m
        var bad = entries
        if bad.isEmpty {
            lie.kind = .append(prevIndex: prevIndex, prevTerm: m.term + 1, entries: [], commit: commit)
            return lie
        }
        let at = Int.random(in: 0..<bad.count, using: &random)
        switch Int.random(in: 0..<4, using: &random) {
        case 0: bad[at].index += 1 + UInt64.random(in: 0..<5, using: &random)
        case 1: bad[at].term = m.term + 1
        case 2: bad[at].kind = .configuration; bad[at].data = [0xFF, 1, 2]
        default: bad.insert(bad[at], at: at)
        }
        lie.kind = .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: bad, commit: commit)
        return lie
    }

    /// An acknowledgement of far more than the leader has: refused when it reaches the leader
    /// of its term; ignored by anyone else. (Far more: one the leader's log could reach before
    /// it arrives would be an acknowledgement of entries the follower lacks, a lie no check
    /// can see.)
    static func ackBeyondLast(_ m: Message, sim: Simulation, random: inout SimRandom) -> Message? {
        guard case let .appendResponse(_, reject, hintIndex, hintTerm) = m.kind, !reject,
              let last = sim.node(m.to).raft?.lastIndex else { return nil }
        var lie = m
        lie.kind = .appendResponse(index: last + 1_000_000 + UInt64.random(in: 0..<100, using: &random), reject: false, hintIndex: hintIndex, hintTerm: hintTerm)
        return lie
    }

    // MARK: Anything at all

    static func arbitraryMessage(from liar: NodeID, sim: Simulation, random: inout SimRandom) -> (Message, NodeID) {
        let ids = sim.ids
        let target = random.pick(ids.filter { $0 != liar })
        let raft = sim.node(target).raft
        let term = raft?.term ?? 0
        let last = raft?.lastIndex ?? 0
        let commit = raft?.commitIndex ?? 0
        func value(_ near: UInt64) -> UInt64 {
            random.pick([0, 1, 2, near, near &+ 1, near &- 1, near &+ 2, near &+ 1000, MessageLimits().maxValue,
                         MessageLimits().maxValue + 1, UInt64.max, UInt64.max - 1, UInt64.random(in: 0...UInt64.max, using: &random)])
        }
        let from = random.chance(0.7) ? liar : random.pick(ids + [0, 99, UInt64.max])
        let to = random.chance(0.9) ? target : random.pick(ids + [0, 77])
        let messageTerm = random.chance(0.6) ? term &+ UInt64.random(in: 0...2, using: &random) : value(term)
        let kind: Message.Kind
        switch Int.random(in: 0..<12, using: &random) {
        case 0: kind = .preVote(lastIndex: value(last), lastTerm: value(term))
        case 1: kind = .preVoteResponse(reject: random.chance(0.5))
        case 2: kind = .vote(lastIndex: value(last), lastTerm: value(term), transfer: random.chance(0.3))
        case 3: kind = .voteResponse(reject: random.chance(0.5))
        case 4:
            let prev = random.chance(0.7) ? last &- UInt64.random(in: 0...3, using: &random) : value(last)
            var entries: [Entry] = []
            var index = prev &+ 1
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                let kindOfEntry: Entry.Kind = random.chance(0.2) ? .configuration : .normal
                let data: [UInt8] = kindOfEntry == .configuration && random.chance(0.5)
                    ? ConfigurationChange(random.pick([.addVoter, .addLearner, .remove]), random.pick(ids + [0, 42])).encoded()
                    : (0..<Int.random(in: 0...6, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                entries.append(Entry(index: random.chance(0.9) ? index : value(index), term: random.chance(0.8) ? messageTerm : value(term), kind: kindOfEntry, data: data))
                index &+= 1
            }
            kind = .append(prevIndex: prev, prevTerm: random.chance(0.7) ? (raft?.term(at: prev) ?? 0) : value(term), entries: entries, commit: random.chance(0.5) ? commit : value(commit))
        case 5: kind = .appendResponse(index: value(last), reject: random.chance(0.4), hintIndex: value(last), hintTerm: value(term))
        case 6: kind = .heartbeat(commit: value(commit), context: random.chance(0.5) ? nil : [UInt8](repeating: 1, count: Int.random(in: 0...80, using: &random)))
        case 7: kind = .heartbeatResponse(context: random.chance(0.5) ? nil : [UInt8](repeating: 0, count: Int.random(in: 0...9, using: &random)))
        case 8:
            let voters = Set((0..<Int.random(in: 0...4, using: &random)).map { _ in random.pick(ids + [0, 9]) })
            let metadata = SnapshotMetadata(index: random.chance(0.6) ? commit &+ UInt64.random(in: 0...20, using: &random) : value(commit),
                                            term: random.chance(0.7) ? messageTerm : value(term),
                                            configuration: ClusterConfiguration(voters: voters))
            kind = .snapshot(Snapshot(metadata: metadata))
        case 10: kind = .readIndex(context: [UInt8](repeating: 2, count: Int.random(in: 0...80, using: &random)))
        case 11: kind = .readIndexResponse(index: value(commit), context: [UInt8](repeating: 3, count: Int.random(in: 0...80, using: &random)))
        default: kind = .timeoutNow
        }
        return (Message(from: from, to: to, term: messageTerm, kind: kind), target)
    }
}
