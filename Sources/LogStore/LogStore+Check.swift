extension LogStore {
    /// Values in this log that no running node could have written and that a node must not
    /// start on: a term or index past `maxValue` (the largest a node accepts from a peer), an
    /// entry of a term after the stored term, a commit index past the log. Each names the
    /// value and where it is, so `chorus-node` can refuse to start with a message an operator
    /// can act on and `chorus-tools status` can show it. Empty for a sound log.
    ///
    /// `entryKinds`, when given, are the kinds the reader knows: every entry is read (and its
    /// checksum checked) and one of another kind is a problem. A node checks this once at
    /// start; what it appends later it has validated, and the checksum covers the kind.
    public func problems(maxValue: UInt64, entryKinds: ClosedRange<UInt8>? = nil) throws -> [String] {
        let hard = try hardState()
        let snapshot = try snapshotMetadata()
        let first = try firstIndex()
        let last = try lastIndex()
        var problems: [String] = []
        func check(_ name: String, _ value: UInt64) {
            if value > maxValue {
                problems.append("\(path): \(name) \(value) is beyond \(maxValue), the largest a node accepts")
            }
        }
        check("the stored term", hard.term)
        check("the stored vote", hard.vote)
        check("the stored commit index", hard.commit)
        check("the snapshot index", snapshot.index)
        check("the snapshot term", snapshot.term)
        check("the last index", last)
        if snapshot.term > hard.term {
            problems.append("\(path): the snapshot's term \(snapshot.term) is after the stored term \(hard.term)")
        }
        if last >= first, let lastTerm = try term(at: last), lastTerm > hard.term {
            problems.append("\(path): entry \(last) has term \(lastTerm), after the stored term \(hard.term)")
        }
        if hard.commit > max(last, snapshot.index) {
            problems.append("\(path): the stored commit index \(hard.commit) is past the last entry \(last)")
        }
        if let entryKinds, last >= first {
            var next = first
            scan: while next <= last {
                let batch = try entries(from: next, through: min(last, next + 4095))
                guard let final = batch.last else { break }
                for entry in batch where !entryKinds.contains(entry.kind) {
                    problems.append("\(path): entry \(entry.index) has entry kind \(entry.kind), which this build does not know (it knows \(entryKinds)); a newer release wrote it, or the log is damaged")
                    break scan
                }
                next = final.index + 1
            }
        }
        return problems
    }
}
