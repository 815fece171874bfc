import Raft
import Testing

/// One heartbeat round out at a time: reads that arrive while it is out share the next round,
/// whose heartbeats go to the followers that confirmed the last one.
@Suite struct ReadIndexBatchingTests {
    func leader() -> (RaftCore, MemoryStorage) { SingleCore.leader(seed: 5) }

    @discardableResult
    func settle(_ core: inout RaftCore, _ storage: MemoryStorage) -> (sent: [Message], reads: [ReadState]) {
        SingleCore.settle(&core, storage)
    }

    /// The contexts of the heartbeats in `messages`, by recipient.
    func heartbeats(in messages: [Message]) -> [NodeID: [[UInt8]?]] {
        var found: [NodeID: [[UInt8]?]] = [:]
        for message in messages {
            if case let .heartbeat(_, context) = message.kind { found[message.to, default: []].append(context) }
        }
        return found
    }

    func read(_ core: inout RaftCore, _ context: [UInt8]) -> Bool {
        core.readIndex(context: context)
    }

    func answer(_ core: inout RaftCore, from node: NodeID, context: [UInt8]) {
        core.step(Message(from: node, to: 1, term: 1, kind: .heartbeatResponse(context: context)))
    }

    /// The name the leader gives its `n`th round.
    func round(_ n: UInt64) -> [UInt8] {
        withUnsafeBytes(of: n.bigEndian, Array.init)
    }

    @Test func readsArrivingDuringARoundShareTheNextOne() {
        var (core, storage) = leader()
        #expect(core.isLeader)

        #expect(read(&core, [1]))
        let first = settle(&core, storage)
        #expect(heartbeats(in: first.sent) == [2: [round(1)], 3: [round(1)]])

        // Four more while the first round is out: nothing is sent for them yet.
        for context: UInt8 in 2...5 { #expect(read(&core, [context])) }
        let meanwhile = settle(&core, storage)
        #expect(meanwhile.sent.isEmpty, "reads waiting for the round out sent \(meanwhile.sent)")
        #expect(meanwhile.reads.isEmpty)

        // A majority (node 1 and node 2) confirms the first round: its read is served, and
        // one heartbeat round starts for the four that waited, to node 2 alone, which makes a
        // majority with the leader and answered first.
        answer(&core, from: 2, context: round(1))
        let confirmed = settle(&core, storage)
        #expect(confirmed.reads == [ReadState(index: 1, context: [1])])
        #expect(heartbeats(in: confirmed.sent) == [2: [round(2)]])

        // An answer to a round already confirmed, or naming a read rather than a round,
        // confirms nothing.
        answer(&core, from: 3, context: round(1))
        answer(&core, from: 3, context: [3])
        #expect(settle(&core, storage).reads.isEmpty)

        answer(&core, from: 2, context: round(2))
        let second = settle(&core, storage)
        #expect(second.reads == (2...5).map { ReadState(index: 1, context: [$0]) })
        #expect(heartbeats(in: second.sent).isEmpty, "no round is started with no reads waiting")
    }

    @Test func aLostRoundIsConfirmedByTheNextTicksHeartbeat() {
        var (core, storage) = leader()
        #expect(read(&core, [9]))
        settle(&core, storage)
        // The first heartbeats were lost; the periodic ones carry the round out.
        var sent: [Message] = []
        for _ in 0..<2 {
            core.tick()
            sent += settle(&core, storage).sent
        }
        #expect(heartbeats(in: sent)[2] == [round(1)])
        answer(&core, from: 3, context: round(1))
        #expect(settle(&core, storage).reads == [ReadState(index: 1, context: [9])])
    }

    @Test func aNewLeaderStartsWithNoRoundOut() {
        var (core, storage) = leader()
        #expect(read(&core, [1]))
        #expect(read(&core, [2]))
        settle(&core, storage)
        // A higher term deposes the leader: the reads are gone with its leadership.
        core.step(Message(from: 3, to: 1, term: 2, kind: .heartbeat(commit: 1, context: nil)))
        #expect(!core.isLeader)
        answer(&core, from: 2, context: round(1))
        #expect(settle(&core, storage).reads.isEmpty)
        // A read now goes to the new leader.
        #expect(read(&core, [3]))
        let sent = settle(&core, storage).sent
        #expect(sent.count == 1 && sent[0].to == 3 && sent[0].term == 2)
        #expect(sent.first.map { if case .readIndex = $0.kind { true } else { false } } == true)
    }
}

extension ReadIndexBatchingTests {
    /// Reads waiting on a round when the leader becomes the only voter hear from nobody:
    /// they are served then, not left to time out.
    @Test func readsOutWhenTheLeaderIsLeftAloneAreServed() {
        var (core, storage) = leader()
        #expect(read(&core, [1]))
        #expect(read(&core, [2]))
        settle(&core, storage)

        var proposed = core.proposeConfigurationChange(ConfigurationChange(.remove, 3))
        #expect(proposed)
        settle(&core, storage)
        core.step(Message(from: 2, to: 1, term: 1, kind: .appendResponse(index: 2, reject: false, hintIndex: 0, hintTerm: 0)))
        #expect(settle(&core, storage).reads.isEmpty, "nodes 1 and 2 still make the majority; node 2 has not answered the round")

        proposed = core.proposeConfigurationChange(ConfigurationChange(.remove, 2))
        #expect(proposed)
        let alone = settle(&core, storage)
        #expect(alone.reads.map(\.context) == [[1], [2]])
        // From now on a read is confirmed at once.
        #expect(read(&core, [3]))
        #expect(settle(&core, storage).reads.map(\.context) == [[3]])
    }
}

/// A follower's read goes to its leader, which confirms it in a round like its own reads and
/// answers with its commit index.
extension ReadIndexBatchingTests {
    @Test func aFollowersReadIsConfirmedByTheLeadersRoundAndAnsweredToIt() {
        var (core, storage) = leader()
        core.step(Message(from: 2, to: 1, term: 1, kind: .readIndex(context: [9])))
        #expect(read(&core, [1]))
        let first = settle(&core, storage)
        #expect(heartbeats(in: first.sent) == [2: [round(1)], 3: [round(1)]])
        // The first round serves node 2's read: it is answered to node 2, not handed over
        // here; the leader's own read, which waited, starts the next round.
        answer(&core, from: 3, context: round(1))
        let confirmed = settle(&core, storage)
        #expect(confirmed.reads.isEmpty)
        #expect(confirmed.sent.contains(Message(from: 1, to: 2, term: 1, kind: .readIndexResponse(index: 1, context: [9]))))
        #expect(heartbeats(in: confirmed.sent) == [3: [round(2)]], "the next round goes to the quickest majority")
        answer(&core, from: 3, context: round(2))
        let own = settle(&core, storage)
        #expect(own.reads == [ReadState(index: 1, context: [1])])
        #expect(!own.sent.contains { if case .readIndexResponse = $0.kind { true } else { false } })
    }

    @Test func aFollowerForwardsItsReadAndTakesOnlyItsLeadersAnswer() {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var core = RaftCore(storage: storage, options: RaftOptions(id: 2, seed: 1))
        #expect(!read(&core, [9]), "with no leader known there is nobody to ask")
        core.step(Message(from: 1, to: 2, term: 1, kind: .heartbeat(commit: 0, context: nil)))
        settle(&core, storage)

        #expect(read(&core, [9]))
        // The read goes out under a name of this process's own (see `ForwardedReads`).
        let sent = settle(&core, storage).sent
        guard sent.count == 1, case let .readIndex(name) = sent[0].kind else {
            Issue.record("expected one forwarded read, got \(sent)")
            return
        }
        #expect(sent[0].to == 1 && name.count == 16 && name != [9])
        let stranger = core.step(Message(from: 3, to: 2, term: 1, kind: .readIndexResponse(index: 7, context: name)))
        #expect(stranger == .unknownSender)
        // An answer under a name this process never sent (an earlier process's) is dropped.
        core.step(Message(from: 1, to: 2, term: 1, kind: .readIndexResponse(index: 5, context: [9])))
        var other = name
        other[0] ^= 1
        core.step(Message(from: 1, to: 2, term: 1, kind: .readIndexResponse(index: 5, context: other)))
        #expect(settle(&core, storage).reads == [])
        core.step(Message(from: 1, to: 2, term: 1, kind: .readIndexResponse(index: 7, context: name)))
        #expect(settle(&core, storage).reads == [ReadState(index: 7, context: [9])])
        // A second answer to the same read (it was asked twice) serves nothing more.
        core.step(Message(from: 1, to: 2, term: 1, kind: .readIndexResponse(index: 8, context: name)))
        #expect(settle(&core, storage).reads == [])
    }

    @Test func aFollowerForgetsItsForwardedReadsWhenItsLeaderChanges() {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var core = RaftCore(storage: storage, options: RaftOptions(id: 2, seed: 1))
        core.step(Message(from: 1, to: 2, term: 1, kind: .heartbeat(commit: 0, context: nil)))
        settle(&core, storage)
        #expect(read(&core, [9]))
        guard case let .readIndex(name)? = settle(&core, storage).sent.first?.kind else {
            Issue.record("no read was forwarded")
            return
        }
        // Node 3 leads term 2; its answer under node 1's name means nothing.
        core.step(Message(from: 3, to: 2, term: 2, kind: .heartbeat(commit: 0, context: nil)))
        core.step(Message(from: 3, to: 2, term: 2, kind: .readIndexResponse(index: 7, context: name)))
        #expect(settle(&core, storage).reads == [])
    }
}

/// A round's heartbeats go to as few followers as make a majority: the quickest, and those
/// whose reads it serves; every member hears the round on the next tick and every
/// `fullRoundEvery`th round.
extension ReadIndexBatchingTests {
    /// Node 1 leading nodes 1…5 in term 1, its no-op committed.
    func leaderOfFive() -> (RaftCore, MemoryStorage) {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3, 4, 5]))
        var options = RaftOptions(id: 1, seed: 3)
        options.preVote = false
        options.heartbeatTicks = 2
        var core = RaftCore(storage: storage, options: options)
        core.campaign()
        settle(&core, storage)
        for voter: NodeID in [2, 3] { core.step(Message(from: voter, to: 1, term: 1, kind: .voteResponse(reject: false))) }
        settle(&core, storage)
        for voter: NodeID in [2, 3] { core.step(Message(from: voter, to: 1, term: 1, kind: .appendResponse(index: 1, reject: false, hintIndex: 0, hintTerm: 0))) }
        settle(&core, storage)
        return (core, storage)
    }

    @Test func aRoundGoesToTheQuickestMajorityAndToTheFollowersWhoseReadsItServes() {
        var (core, storage) = leaderOfFive()
        #expect(core.isLeader && core.commitIndex == 1)
        #expect(read(&core, [1]))
        // Nobody is known to be quick yet: the first round goes to everyone.
        #expect(heartbeats(in: settle(&core, storage).sent) == [2: [round(1)], 3: [round(1)], 4: [round(1)], 5: [round(1)]])
        #expect(read(&core, [2]))
        answer(&core, from: 4, context: round(1))
        #expect(settle(&core, storage).reads.isEmpty, "two of five is no majority")
        answer(&core, from: 2, context: round(1))
        let first = settle(&core, storage)
        #expect(first.reads == [ReadState(index: 1, context: [1])])
        #expect(heartbeats(in: first.sent) == [4: [round(2)], 2: [round(2)]], "nodes 4 and 2 confirmed round 1 first")

        // Node 5's read and the leader's share round 3: node 5 hears it too, with the commit
        // index it must apply before it answers.
        core.step(Message(from: 5, to: 1, term: 1, kind: .readIndex(context: [5])))
        #expect(read(&core, [3]))
        answer(&core, from: 2, context: round(2))
        answer(&core, from: 4, context: round(2))
        let second = settle(&core, storage)
        #expect(second.reads == [ReadState(index: 1, context: [2])])
        let third = heartbeats(in: second.sent)
        #expect(third == [2: [round(3)], 4: [round(3)], 5: [round(3)]])
    }

    @Test func aRoundWhoseQuickFollowerIsGoneIsConfirmedByTheNextTicksHeartbeats() {
        var (core, storage) = leaderOfFive()
        #expect(read(&core, [1]))
        settle(&core, storage)
        answer(&core, from: 2, context: round(1))
        answer(&core, from: 3, context: round(1))
        settle(&core, storage)
        // Round 2 goes to nodes 2 and 3; node 3 has died.
        #expect(read(&core, [2]))
        #expect(heartbeats(in: settle(&core, storage).sent) == [2: [round(2)], 3: [round(2)]])
        answer(&core, from: 2, context: round(2))
        #expect(settle(&core, storage).reads.isEmpty)
        // The tick's heartbeats carry the round to every member; node 5 answers it.
        var sent: [Message] = []
        for _ in 0..<2 {
            core.tick()
            sent += settle(&core, storage).sent
        }
        #expect(heartbeats(in: sent) == [2: [round(2)], 3: [round(2)], 4: [round(2)], 5: [round(2)]])
        answer(&core, from: 5, context: round(2))
        #expect(settle(&core, storage).reads == [ReadState(index: 1, context: [2])])
        // The next round goes to those that answered: node 3 is left out.
        #expect(read(&core, [3]))
        #expect(heartbeats(in: settle(&core, storage).sent) == [2: [round(3)], 5: [round(3)]])
    }

    @Test func everySixteenthRoundGoesToEveryMember() {
        var (core, storage) = leaderOfFive()
        for n in UInt64(1)...17 {
            #expect(read(&core, [UInt8(n)]))
            let targets = Set(heartbeats(in: settle(&core, storage).sent).keys)
            #expect(targets == (n == 1 || n == 16 ? [2, 3, 4, 5] : [2, 3]), "round \(n)")
            answer(&core, from: 2, context: round(n))
            answer(&core, from: 3, context: round(n))
            #expect(settle(&core, storage).reads == [ReadState(index: 1, context: [UInt8(n)])])
        }
    }
}
