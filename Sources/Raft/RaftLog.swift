/// The log as the core sees it: durable entries in storage followed by unstable ones, plus
/// the commit and apply positions.
struct RaftLog {
    let storage: any RaftStorage
    var unstable: Unstable
    /// Highest index known to be on a majority (never decreases).
    private(set) var committed: Index
    /// Highest index handed to the application.
    private(set) var applied: Index
    let maxApplyBytes: Int

    init(storage: any RaftStorage, maxApplyBytes: Int) {
        self.storage = storage
        self.maxApplyBytes = maxApplyBytes
        let first = storage.firstIndex()
        unstable = Unstable(offset: storage.lastIndex() + 1)
        committed = first - 1
        applied = first - 1
    }

    var firstIndex: Index { unstable.firstIndex ?? storage.firstIndex() }
    var lastIndex: Index { unstable.lastIndex ?? storage.lastIndex() }
    var lastTerm: Term { term(at: lastIndex) ?? 0 }

    /// The highest index known durable locally.
    var stableIndex: Index {
        // A snapshot still being written makes nothing durable yet.
        if unstable.snapshot != nil { return 0 }
        return min(unstable.offset - 1, lastIndex)
    }

    /// The term at `index`, or nil when it was compacted or does not exist.
    func term(at index: Index) -> Term? {
        // `index <= lastIndex` first: then `index + 1` cannot overflow, whatever was asked.
        guard index <= lastIndex, index + 1 >= firstIndex else { return nil }
        if let term = unstable.term(at: index) { return term }
        return try? storage.term(at: index)
    }

    func matchTerm(_ index: Index, _ term: Term) -> Bool {
        self.term(at: index) == term
    }

    /// Raft §5.4.1: a candidate's log is at least as up to date as ours.
    func isUpToDate(lastIndex: Index, term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && lastIndex >= self.lastIndex)
    }

    /// The first new entry whose term differs from ours (0 when all match).
    func findConflict(_ entries: [Entry]) -> Index {
        for entry in entries where !matchTerm(entry.index, entry.term) {
            return entry.index
        }
        return 0
    }

    /// The largest index ≤ `index` whose term is ≤ `term`, with that term: the place where a
    /// log that has `term` at `index` can start to agree with ours.
    func findConflictByTerm(_ index: Index, _ term: Term) -> (index: Index, term: Term) {
        var i = index
        while true {
            guard let t = self.term(at: i) else { return (i, 0) }
            if t <= term || i == 0 { return (i, t) }
            i -= 1
        }
    }

    /// AppendEntries on a follower, whose entries `validate` found consecutive after
    /// `prevIndex`. Returns the last new index, or nil when the entry before the batch does
    /// not match. An honest leader never contradicts the committed log (leader completeness);
    /// one that does is refused, not obeyed.
    mutating func maybeAppend(prevIndex: Index, prevTerm: Term, commit: Index, entries: [Entry]) -> Result<Index?, Refusal> {
        guard matchTerm(prevIndex, prevTerm) else { return .success(nil) }
        let lastNew = prevIndex + Index(entries.count)
        let conflict = findConflict(entries)
        if conflict != 0 {
            guard conflict > committed else { return .failure(.conflictsWithCommitted(index: conflict, committed: committed)) }
            append(Array(entries[Int(conflict - (prevIndex + 1))...]))
        }
        commitTo(min(commit, lastNew))
        return .success(lastNew)
    }

    @discardableResult
    mutating func append(_ entries: [Entry]) -> Index {
        guard let first = entries.first else { return lastIndex }
        precondition(first.index > committed, "append at \(first.index) would overwrite committed \(committed)")
        unstable.truncateAndAppend(entries)
        return lastIndex
    }

    mutating func commitTo(_ index: Index) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit \(index) is beyond the last index \(lastIndex)")
        committed = index
    }

    /// Advances the commit index to `index` if it holds an entry of `term` (Figure 8).
    mutating func maybeCommit(_ index: Index, term: Term, requireTerm: Bool = true) -> Bool {
        guard index > committed, !requireTerm || self.term(at: index) == term else { return false }
        commitTo(index)
        return true
    }

    mutating func appliedTo(_ index: Index) {
        guard index > applied else { return }
        precondition(index <= committed, "applied \(index) beyond committed \(committed)")
        applied = index
    }

    mutating func stableTo(index: Index, term: Term) {
        unstable.stableTo(index: index, term: term)
    }

    mutating func stableSnapshotTo(_ index: Index) {
        unstable.stableSnapshotTo(index)
    }

    mutating func restore(_ snapshot: Snapshot) {
        committed = snapshot.metadata.index
        unstable.restore(snapshot)
    }

    /// After restoring a snapshot the application state jumps to it.
    mutating func resetApplied(to index: Index) {
        applied = index
    }

    var unstableEntries: [Entry] { unstable.entries }

    var hasNextCommittedEntries: Bool {
        committed + 1 > max(applied + 1, firstIndex)
    }

    func nextCommittedEntries() -> [Entry] {
        let from = max(applied + 1, firstIndex)
        guard committed + 1 > from else { return [] }
        return (try? slice(from, committed + 1, maxBytes: maxApplyBytes)) ?? []
    }

    /// Entries from `index` to the end, at most `maxBytes` (at least one).
    func entries(from index: Index, maxBytes: Int) throws(StorageError) -> [Entry] {
        guard index <= lastIndex else { return [] }
        return try slice(index, lastIndex + 1, maxBytes: maxBytes)
    }

    /// Entries in `lo..<hi`, from storage first, then the unstable part.
    func slice(_ lo: Index, _ hi: Index, maxBytes: Int) throws(StorageError) -> [Entry] {
        guard lo < hi else { return [] }
        guard lo >= firstIndex else { throw .compacted }
        precondition(hi <= lastIndex + 1, "slice \(lo)..<\(hi) beyond \(lastIndex)")
        var result: [Entry] = []
        if lo < unstable.offset {
            result = try storage.entries(from: lo, to: min(hi, unstable.offset), maxBytes: maxBytes)
            if Index(result.count) < min(hi, unstable.offset) - lo { return result }
        }
        if hi > unstable.offset {
            var size = result.reduce(0) { $0 + $1.data.count }
            for entry in unstable.slice(max(lo, unstable.offset), hi) {
                size += entry.data.count
                if !result.isEmpty && size > maxBytes { break }
                result.append(entry)
            }
        }
        return result
    }
}
