@testable import Node
@testable import Raft
@testable import Replica
import Testing

/// The running node's own checks of its Raft state (`Invariants`), one broken invariant at a
/// time, and a sequence that keeps them all.
@Suite struct InvariantsTests {
    static func ready(hard: HardState? = nil, entries: [(Index, Term)] = [], committed: [(Index, Term)] = [], snapshot: Index? = nil) -> Ready {
        var ready = Ready()
        ready.hardState = hard
        ready.entries = entries.map { Entry(index: $0.0, term: $0.1) }
        ready.committedEntries = committed.map { Entry(index: $0.0, term: $0.1) }
        ready.snapshot = snapshot.map { Snapshot(metadata: SnapshotMetadata(index: $0, term: 2)) }
        return ready
    }

    /// Term 2, voted for 3, commit 10, applied 8.
    static let start = Invariants(hardState: HardState(term: 2, vote: 3, commit: 10), applied: 8)

    static func violation(_ ready: Ready, from invariants: Invariants = start) -> String? {
        var invariants = invariants
        do {
            try invariants.check(ready)
            return nil
        } catch {
            return "\(error.invariant): \(error.values)"
        }
    }

    @Test func aNodesOrdinaryLifeKeepsThem() throws {
        var invariants = Self.start
        // Apply what is committed, append, learn a higher commit, a new term and a new vote.
        try invariants.check(Self.ready(committed: [(9, 2), (10, 2)]))
        try invariants.check(Self.ready(hard: HardState(term: 2, vote: 3, commit: 10), entries: [(11, 2), (12, 2)]))
        try invariants.check(Self.ready(hard: HardState(term: 2, vote: 3, commit: 12), committed: [(11, 2), (12, 2)]))
        try invariants.check(Self.ready(hard: HardState(term: 3, vote: 0, commit: 12)))
        try invariants.check(Self.ready(hard: HardState(term: 3, vote: 5, commit: 12), entries: [(13, 3)]))
        // A snapshot past the commit index, then entries after it.
        try invariants.check(Self.ready(hard: HardState(term: 3, vote: 5, commit: 40), snapshot: 40))
        try invariants.check(Self.ready(entries: [(41, 3)]))
        #expect(invariants.term == 3 && invariants.vote == 5 && invariants.commit == 40 && invariants.applied == 40)
    }

    @Test func eachBrokenInvariantIsNamedWithItsValues() {
        #expect(Self.violation(Self.ready(hard: HardState(term: 1, vote: 3, commit: 10))) == "the term never goes back: term 2 -> 1")
        #expect(Self.violation(Self.ready(hard: HardState(term: 2, vote: 4, commit: 10))) == "a vote is cast once per term: term 2: vote 3 -> 4")
        #expect(Self.violation(Self.ready(hard: HardState(term: 2, vote: 0, commit: 10))) == "a vote is cast once per term: term 2: vote 3 -> 0")
        #expect(Self.violation(Self.ready(hard: HardState(term: 2, vote: 3, commit: 9))) == "the commit index never decreases: commit 10 -> 9")
        #expect(Self.violation(Self.ready(entries: [(10, 2)])) == "an append never replaces committed entries: append from index 10, commit 10")
        #expect(Self.violation(Self.ready(entries: [(11, 2), (13, 2)])) == "appended entries are consecutive: index 13 at position 1 of an append from 11")
        #expect(Self.violation(Self.ready(entries: [(11, 3)])) == "no entry is newer than the node's term: entry 11 of term 3, term 2")
        #expect(Self.violation(Self.ready(committed: [(9, 2), (10, 2), (11, 2)])) == "only committed entries are applied: apply up to 11, commit 10")
        #expect(Self.violation(Self.ready(committed: [(10, 2)])) == "each committed entry is applied once, none skipped: apply from 10 after applied 8")
        #expect(Self.violation(Self.ready(committed: [(8, 2), (9, 2)])) == "each committed entry is applied once, none skipped: apply from 8 after applied 8")
        #expect(Self.violation(Self.ready(committed: [(9, 2), (9, 2)])) == "committed entries are applied in order: entry 9 at position 1 of an apply from 9")
        #expect(Self.violation(Self.ready(hard: HardState(term: 2, vote: 3, commit: 10), snapshot: 10)) == "a snapshot installed is past the commit index: snapshot at 10, commit 10")
        // Restarted with the commit index written behind what the projections applied.
        let restarted = Invariants(hardState: HardState(term: 2, vote: 3, commit: 5), applied: 8)
        #expect(Self.violation(Self.ready(snapshot: 7), from: restarted) == "a snapshot installed is past what was applied: snapshot at 7, applied 8")
        #expect(Self.violation(Self.ready(snapshot: 9), from: restarted) == nil)
    }

    @Test func aViolationLeavesTheCheckedStateAsItWas() {
        var invariants = Self.start
        // A new commit index in the same ready as a bad append: nothing of it is taken.
        #expect(throws: InvariantViolation.self) { try invariants.check(Self.ready(hard: HardState(term: 2, vote: 3, commit: 12), entries: [(5, 2)])) }
        #expect(invariants.commit == 10 && invariants.applied == 8)
    }
}
