import Raft
import Testing

/// What a `Ready` asks to be fsynced before its messages leave.
@Suite struct ReadyTests {
    /// A follower of a three-node cluster holding entries 1...3 of term 1.
    func follower() -> RaftCore {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        storage.append((1...3).map { Entry(index: $0, term: 1) })
        storage.setHardState(HardState(term: 1, vote: 2, commit: 1))
        var core = RaftCore(storage: storage, options: RaftOptions(id: 1, seed: 7))
        if core.hasReady { core.advance(core.ready()) }
        return core
    }

    @Test func aVoteIsDurableBeforeItsAnswerLeaves() {
        var core = follower()
        core.step(Message(from: 3, to: 1, term: 2, kind: .vote(lastIndex: 3, lastTerm: 1, transfer: false)))
        let ready = core.ready()
        #expect(ready.hardState?.term == 2 && ready.hardState?.vote == 3)
        #expect(ready.messages.contains { $0.kind == .voteResponse(reject: false) })
        #expect(ready.mustSync, "a vote answered before it is on disk could be cast twice after a crash")
    }

    @Test func aNewTermIsDurableBeforeAnythingLeaves() {
        var core = follower()
        core.step(Message(from: 3, to: 1, term: 5, kind: .append(prevIndex: 3, prevTerm: 1, entries: [], commit: 1)))
        let ready = core.ready()
        #expect(ready.hardState?.term == 5)
        #expect(ready.mustSync)
    }

    @Test func aCommitIndexAloneNeedsNoFsync() {
        var core = follower()
        // A heartbeat of the current leader that only moves the commit index.
        core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [], commit: 3)))
        let ready = core.ready()
        #expect(ready.hardState?.commit == 3)
        #expect(ready.committedEntries.map(\.index) == [2, 3], "applied without waiting for the disk")
        #expect(!ready.mustSync)
    }

    @Test func entriesAreDurableBeforeTheyAreAcknowledged() {
        var core = follower()
        core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 3, prevTerm: 1, entries: [Entry(index: 4, term: 1)], commit: 3)))
        let ready = core.ready()
        #expect(ready.entries.map(\.index) == [4])
        #expect(ready.mustSync)
    }
}

/// A restart where the application applied more than the hard state says was committed (the
/// commit index alone is written without an fsync, `aCommitIndexAloneNeedsNoFsync`).
@Suite struct RestartedApplicationTests {
    /// A follower holding entries 1...5 of term 1, restarted with the commit index recorded
    /// at 1 and the application's own position at `applied`.
    func restarted(applied: Index, last: Index = 5) -> RaftCore {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        storage.append((1...last).map { Entry(index: $0, term: 1) })
        storage.setHardState(HardState(term: 1, vote: 2, commit: 1))
        var options = RaftOptions(id: 1, seed: 7)
        options.applied = applied
        return RaftCore(storage: storage, options: options)
    }

    @Test func nothingTheApplicationHoldsIsHandedBackToIt() {
        var core = restarted(applied: 4)
        #expect(core.commitIndex == 4 && core.appliedIndex == 4, "what was applied was committed")
        // The leader's heartbeat commits entry 5: only that one is to be applied.
        core.step(Message(from: 2, to: 1, term: 1, kind: .append(prevIndex: 5, prevTerm: 1, entries: [], commit: 5)))
        let ready = core.ready()
        #expect(ready.committedEntries.map(\.index) == [5])
        #expect(ready.hardState?.commit == 5)
    }

    @Test func aPositionPastTheLogIsTakenOnlyAsFarAsTheLogGoes() {
        // The log holds less than the application applied (it should never happen, since the
        // log is synced before entries are applied): the core commits only what it holds. The
        // next entries committed are then at or below what the application holds, and a node
        // stops on them ("each committed entry is applied once", `InvariantsTests`) rather
        // than apply them twice or skip them.
        let core = restarted(applied: 9, last: 5)
        #expect(core.commitIndex == 5 && core.appliedIndex == 5)
    }
}
