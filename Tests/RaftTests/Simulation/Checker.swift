import Raft

/// The safety properties of Raft, checked by the simulator after every step.
struct Checker {
    let seed: UInt64
    /// Election safety: the leader seen for each term.
    var leaders: [Term: NodeID] = [:]
    /// State machine safety: what was applied at each index, and the state hash after it.
    var applied: [Index: (term: Term, data: [UInt8], hash: UInt64)] = [:]
    /// Log matching: for each (index, term) ever in a log, its data and the previous term.
    var entries: [IndexTerm: (data: [UInt8], kind: Entry.Kind, previousTerm: Term?)] = [:]
    var time = 0

    struct IndexTerm: Hashable {
        var index: Index
        var term: Term
    }

    func fail(_ reason: String) -> SimulationFailure {
        SimulationFailure(seed: seed, time: time, reason: reason)
    }

    /// Run over every node after each step.
    mutating func checkNode(_ node: SimNode) throws {
        guard let raft = node.raft else { return }
        if raft.role == .leader {
            if let other = leaders[raft.term], other != node.id {
                throw fail("election safety: \(other) and \(node.id) both lead term \(raft.term)")
            }
            if leaders[raft.term] == nil {
                leaders[raft.term] = node.id
                try checkLeaderCompleteness(raft, node: node.id)
            }
        }
        if raft.commitIndex < node.highestCommit {
            throw fail("node \(node.id)'s commit index went back from \(node.highestCommit) to \(raft.commitIndex)")
        }
        node.highestCommit = raft.commitIndex
        try checkConfiguration(node, raft)
        if node.appliedIndex > raft.commitIndex && node.pendingWrite == nil {
            throw fail("node \(node.id) applied \(node.appliedIndex) beyond its commit index \(raft.commitIndex)")
        }
    }

    /// A server's configuration is the one its log and snapshot give (a configuration takes
    /// effect when appended, and reverts when its entry is overwritten), and every change of
    /// it moves `configurationVersion`. Checked when everything the core appended is on disk.
    func checkConfiguration(_ node: SimNode, _ raft: RaftCore) throws {
        guard node.pendingWrite == nil, !raft.hasReady else { return }
        // The log's configuration is rebuilt only when the disk or the core changed.
        let last = node.storage.lastIndex()
        let key = [node.storage.snapshotValue.metadata.index, last, (try? node.storage.term(at: last)) ?? 0, raft.configurationVersion, UInt64(node.incarnation)]
        guard key != node.configurationCheckedAt else { return }
        node.configurationCheckedAt = key
        let onDisk = node.configurationOnDisk
        if raft.configuration != onDisk {
            throw fail("node \(node.id)'s configuration \(Self.describe(raft.configuration)) is not its log's \(Self.describe(onDisk))")
        }
        if let (seen, version) = node.seenConfiguration, seen != raft.configuration, version == raft.configurationVersion {
            throw fail("node \(node.id)'s configuration changed from \(Self.describe(seen)) to \(Self.describe(raft.configuration)) without a new configurationVersion")
        }
        node.seenConfiguration = (raft.configuration, raft.configurationVersion)
    }

    static func describe(_ c: ClusterConfiguration) -> String {
        "voters \(c.sortedVoters) learners \(c.learners.sorted())"
    }

    /// Leader completeness: a new leader holds every entry anyone has applied.
    func checkLeaderCompleteness(_ raft: RaftCore, node: NodeID) throws {
        for (index, entry) in applied where index >= raft.firstIndex {
            guard let term = raft.term(at: index) else {
                throw fail("leader completeness: leader \(node) of term \(raft.term) lacks applied entry \(index)")
            }
            if term != entry.term {
                throw fail("leader completeness: leader \(node) has term \(term) at \(index), applied was term \(entry.term)")
            }
        }
    }

    /// Log matching, checked on every batch a node is asked to persist.
    mutating func checkAppended(_ batch: [Entry], previousTerm: Term?, node: NodeID) throws {
        var previous = previousTerm
        for entry in batch {
            let key = IndexTerm(index: entry.index, term: entry.term)
            if let known = entries[key] {
                if known.data != entry.data || known.kind != entry.kind {
                    throw fail("log matching: two different entries at index \(entry.index) term \(entry.term) (node \(node))")
                }
                if let p = previous, let q = known.previousTerm, p != q {
                    throw fail("log matching: entry \(entry.index)/\(entry.term) follows term \(p) on node \(node) but term \(q) elsewhere")
                }
            } else {
                entries[key] = (entry.data, entry.kind, previous)
            }
            previous = entry.term
        }
    }

    /// State machine safety, checked on every apply.
    mutating func checkApplied(_ entry: Entry, hash: UInt64, node: NodeID) throws {
        if let known = applied[entry.index] {
            if known.term != entry.term || known.data != entry.data || known.hash != hash {
                throw fail("state machine safety: node \(node) applied a different entry at \(entry.index) (term \(entry.term) vs \(known.term))")
            }
        } else {
            applied[entry.index] = (entry.term, entry.data, hash)
        }
    }

    /// A restored snapshot must equal the state others reached at that index.
    func checkSnapshot(_ snapshot: Snapshot, hash: UInt64, node: NodeID) throws {
        if let known = applied[snapshot.metadata.index], known.hash != hash {
            throw fail("state machine safety: node \(node) installed a snapshot at \(snapshot.metadata.index) that differs from the applied state")
        }
    }
}
