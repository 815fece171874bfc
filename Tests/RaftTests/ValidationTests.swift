import Raft
import Testing

/// Each kind of message a node must refuse, refused with the exact reason and without a
/// trace in the core's state.
@Suite struct ValidationTests {
    /// A follower of a three-node cluster holding entries 1...3 of term 1, 2 committed, led by 2.
    func follower() -> RaftCore {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        storage.append((1...3).map { Entry(index: $0, term: 1, data: [UInt8($0)]) })
        storage.setHardState(HardState(term: 1, vote: 2, commit: 2))
        var core = RaftCore(storage: storage, options: RaftOptions(id: 1, seed: 7))
        core.step(Message(from: 2, to: 1, term: 1, kind: .heartbeat(commit: 2, context: nil)))
        if core.hasReady { core.advance(core.ready()) }
        return core
    }

    /// Node 1 leading a three-node cluster in term 2, its no-op at index 1.
    func leader() -> RaftCore {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        storage.setHardState(HardState(term: 1))
        var core = RaftCore(storage: storage, options: RaftOptions(id: 1, seed: 7))
        core.campaign()
        core.step(Message(from: 2, to: 1, term: 2, kind: .preVoteResponse(reject: false)))
        core.step(Message(from: 2, to: 1, term: 2, kind: .voteResponse(reject: false)))
        #expect(core.isLeader)
        return core
    }

    @Test func theHeartbeatThatUsedToTrapEveryNodeIsRefused() {
        var core = follower()
        let refusal = core.step(Message(from: 2, to: 1, term: .max, kind: .heartbeat(commit: 3, context: nil)))
        #expect(refusal == .termOutOfRange(.max))
        #expect(core.term == 1 && core.hardState.term == 1 && core.leader == 2 && core.commitIndex == 2)
    }

    @Test func aTermFarPastOursIsRefusedEvenBelowTheCeiling() {
        var core = follower()
        let far = 1 + MessageLimits().maxTermStep + 1
        #expect(core.step(Message(from: 3, to: 1, term: far, kind: .vote(lastIndex: 9, lastTerm: 1, transfer: false))) == .termOutOfRange(far))
        #expect(core.term == 1)
        #expect(core.step(Message(from: 3, to: 1, term: far - 1, kind: .vote(lastIndex: 9, lastTerm: 1, transfer: false))) == nil)
    }

    @Test func misaddressedAndSelfSentMessagesAreRefused() {
        var core = follower()
        #expect(core.step(Message(from: 2, to: 3, term: 1, kind: .heartbeat(commit: 3, context: nil))) == .misaddressed(to: 3))
        #expect(core.step(Message(from: 1, to: 1, term: 1, kind: .timeoutNow)) == .unknownSender)
        #expect(core.step(Message(from: 0, to: 1, term: 1, kind: .voteResponse(reject: false))) == .unknownSender)
    }

    @Test func entriesOutOfSequenceOrOfALaterTermAreRefused() {
        var core = follower()
        let gap = core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(index: 5, term: 1)], commit: 2)))
        #expect(gap == .malformedEntries("entry 5 where 4 was due"))
        let later = core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(index: 4, term: 2)], commit: 2)))
        #expect(later == .malformedEntries("entry 4 has term 2 after 1 in a message of term 1"))
        let badChange = core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(index: 4, term: 1, kind: .configuration, data: [9])], commit: 2)))
        #expect(badChange == .malformedEntries("entry 4 holds no valid configuration change"))
        let huge = core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: .max, prevTerm: 1, entries: [], commit: 2)))
        #expect(huge == .outOfRange(field: "prevIndex", value: .max))
        #expect(core.lastIndex == 3 && core.commitIndex == 2)
    }

    @Test func entriesContradictingTheCommittedLogLeaveItAlone() {
        var core = follower()
        _ = core.ready()
        // Index 2 is committed with term 1; a "leader" of term 2 rewrites it. The follower
        // answers with its commit index and keeps its log (the core also refuses, as
        // `conflictsWithCommitted`, any overwrite of a committed entry that got past this).
        let refusal = core.step(Message(from: 2, to: 1, term: 2, kind: .append(prevIndex: 1, prevTerm: 1, entries: [Entry(index: 2, term: 2)], commit: 2)))
        #expect(refusal == nil)
        #expect(core.term(at: 2) == 1)
        #expect(core.ready().messages.map(\.kind) == [.appendResponse(index: 2, reject: false, hintIndex: 0, hintTerm: 0)])
    }

    @Test func anAcknowledgementPastTheLeadersLogIsRefused() {
        var core = leader()
        let last = core.lastIndex
        #expect(core.step(Message(from: 2, to: 1, term: 2, kind: .appendResponse(index: last + 1, reject: false, hintIndex: 0, hintTerm: 0)))
            == .outOfRange(field: "index", value: last + 1))
        #expect(core.replication(of: 2)?.match == 0)
        #expect(core.step(Message(from: 2, to: 1, term: 2, kind: .appendResponse(index: last, reject: false, hintIndex: 0, hintTerm: 0))) == nil)
        #expect(core.replication(of: 2)?.match == last)
    }

    @Test func onlyTheLeaderMayHandOverLeadership() {
        var core = follower()
        #expect(core.step(Message(from: 3, to: 1, term: 1, kind: .timeoutNow)) == .unknownSender)
        #expect(core.role == .follower)
        #expect(core.step(Message(from: 2, to: 1, term: 1, kind: .timeoutNow)) == nil)
        #expect(core.role == .candidate)
    }

    @Test func oversizedContextsAndSnapshotsWithoutVotersAreRefused() {
        var core = follower()
        let context = [UInt8](repeating: 0, count: 65)
        #expect(core.step(Message(from: 2, to: 1, term: 1, kind: .heartbeat(commit: 2, context: context))) == .tooLarge(field: "context", size: 65, limit: 64))
        let empty = Snapshot(metadata: SnapshotMetadata(index: 10, term: 1, configuration: ClusterConfiguration()))
        #expect(core.step(Message(from: 2, to: 1, term: 1, kind: .snapshot(empty))) == .invalidConfiguration)
        #expect(core.lastIndex == 3)
    }

    @Test func aFreshServerFollowsALeaderItDoesNotKnowYet() {
        // Dissertation §4.2.3: a server added to the cluster starts with no configuration and
        // must accept the leader's appends and vote requests all the same.
        let storage = MemoryStorage(configuration: ClusterConfiguration())
        var core = RaftCore(storage: storage, options: RaftOptions(id: 4, seed: 7))
        #expect(core.step(Message(from: 1, to: 4, term: 3, kind: .append(prevIndex: 0, prevTerm: 0, entries: [Entry(index: 1, term: 3)], commit: 0))) == nil)
        #expect(core.lastIndex == 1 && core.leader == 1)
    }
}
