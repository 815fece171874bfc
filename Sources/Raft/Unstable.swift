/// Entries (and possibly a snapshot) accepted by the core but not yet reported durable.
/// Entries are at `offset...`; anything below is in storage.
struct Unstable {
    var snapshot: Snapshot?
    var entries: [Entry] = []
    var offset: Index

    var firstIndex: Index? { snapshot.map { $0.metadata.index + 1 } }

    var lastIndex: Index? {
        if !entries.isEmpty { return offset + Index(entries.count) - 1 }
        return snapshot?.metadata.index
    }

    func term(at index: Index) -> Term? {
        if index < offset {
            guard let snapshot, snapshot.metadata.index == index else { return nil }
            return snapshot.metadata.term
        }
        guard let last = lastIndex, index <= last else { return nil }
        return entries[Int(index - offset)].term
    }

    /// Entries up to `index` are durable, provided the entry there still has `term` (it may
    /// have been overwritten while the write was in flight).
    mutating func stableTo(index: Index, term: Term) {
        guard let current = self.term(at: index), current == term, index >= offset else { return }
        entries.removeFirst(Int(index + 1 - offset))
        offset = index + 1
    }

    mutating func stableSnapshotTo(_ index: Index) {
        if snapshot?.metadata.index == index { snapshot = nil }
    }

    mutating func restore(_ snapshot: Snapshot) {
        offset = snapshot.metadata.index + 1
        entries = []
        self.snapshot = snapshot
    }

    mutating func truncateAndAppend(_ new: [Entry]) {
        guard let after = new.first?.index else { return }
        if after == offset + Index(entries.count) {
            entries += new
        } else if after <= offset {
            // Replaces everything unstable; the stored suffix is overwritten when persisted.
            offset = after
            entries = new
        } else {
            entries = Array(entries[0..<Int(after - offset)]) + new
        }
    }

    func slice(_ lo: Index, _ hi: Index) -> ArraySlice<Entry> {
        entries[Int(lo - offset)..<Int(hi - offset)]
    }
}
