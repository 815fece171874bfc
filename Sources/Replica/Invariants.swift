import Raft

/// What must hold of this node's own Raft state from one ready to the next, checked before
/// anything of a ready is sent or written.
///
/// The simulator checks these of the core under every schedule it tries; this checks them of
/// the running node, where a bug the simulator missed, a damaged log or a build with a
/// planted bug would otherwise be written to disk and passed to peers. A violation stops the
/// node with the invariant and the values (`InvariantViolation`): a node that stopped can be
/// restarted or replaced; one that wrote a second vote or rewrote a committed entry has
/// broken the cluster's promises.
struct Invariants {
    /// As last written (term and vote) or known (commit).
    private(set) var term: Term
    private(set) var vote: NodeID
    private(set) var commit: Index
    private(set) var applied: Index

    init(hardState: HardState, applied: Index) {
        term = hardState.term
        vote = hardState.vote
        commit = hardState.commit
        self.applied = applied
    }

    /// Checks `ready` against what came before, and takes it as the new state when it holds.
    mutating func check(_ ready: Ready) throws(InvariantViolation) {
        var next = self
        if let hard = ready.hardState {
            guard hard.term >= term else { throw .init("the term never goes back", "term \(term) -> \(hard.term)") }
            if hard.term == term, vote != 0, hard.vote != vote {
                throw .init("a vote is cast once per term", "term \(term): vote \(vote) -> \(hard.vote)")
            }
            guard hard.commit >= commit else { throw .init("the commit index never decreases", "commit \(commit) -> \(hard.commit)") }
            next.term = hard.term
            next.vote = hard.vote
            next.commit = hard.commit
        }
        if let snapshot = ready.snapshot {
            guard snapshot.metadata.index > commit else {
                throw .init("a snapshot installed is past the commit index", "snapshot at \(snapshot.metadata.index), commit \(commit)")
            }
            // After a restart the commit index read back can be behind what was applied (it
            // is written lazily): a snapshot behind the projections would roll them back.
            guard snapshot.metadata.index > applied else {
                throw .init("a snapshot installed is past what was applied", "snapshot at \(snapshot.metadata.index), applied \(applied)")
            }
            next.applied = snapshot.metadata.index
        }
        if let first = ready.entries.first {
            guard first.index > commit else {
                throw .init("an append never replaces committed entries", "append from index \(first.index), commit \(commit)")
            }
            for (offset, entry) in ready.entries.enumerated() {
                guard entry.index == first.index + Index(offset) else {
                    throw .init("appended entries are consecutive", "index \(entry.index) at position \(offset) of an append from \(first.index)")
                }
                guard entry.term <= next.term else {
                    throw .init("no entry is newer than the node's term", "entry \(entry.index) of term \(entry.term), term \(next.term)")
                }
            }
        }
        if let last = ready.committedEntries.last {
            guard last.index <= next.commit else {
                throw .init("only committed entries are applied", "apply up to \(last.index), commit \(next.commit)")
            }
            let first = ready.committedEntries[0].index
            guard first == next.applied + 1 else {
                throw .init("each committed entry is applied once, none skipped", "apply from \(first) after applied \(next.applied)")
            }
            for (offset, entry) in ready.committedEntries.enumerated() where entry.index != first + Index(offset) {
                throw .init("committed entries are applied in order", "entry \(entry.index) at position \(offset) of an apply from \(first)")
            }
            next.applied = last.index
        }
        self = next
    }
}

/// A broken invariant of the node's Raft state: which one, and the values that broke it.
public struct InvariantViolation: Error, CustomStringConvertible {
    public let invariant: String
    public let values: String

    init(_ invariant: String, _ values: String) {
        self.invariant = invariant
        self.values = values
    }

    /// The exit status of a node stopped by one (EX_SOFTWARE).
    public static let exitStatus: Int32 = 70

    public var description: String {
        "invariant broken: \(invariant) (\(values)); the node stops before writing or sending anything of it. Keep this data directory for a report; replace the node's data from its peers"
    }
}
