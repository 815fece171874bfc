extension RaftCore {
    // MARK: Leader: appending and sending

    /// Stamps `entries` with this term and the next indexes and appends them. They count
    /// towards commit only once `advance` reports them durable.
    mutating func appendEntries(_ entries: [Entry]) {
        var next = log.lastIndex + 1
        let stamped = entries.map { entry -> Entry in
            var e = entry
            e.index = next
            e.term = term
            next += 1
            return e
        }
        log.append(stamped)
        configurationMayHaveChanged(appended: stamped)
    }

    mutating func broadcastAppend() {
        guard role == .leader else { return }
        for member in configuration.members where member != id {
            sendAppend(to: member)
        }
    }

    /// Sends `to` what it lacks: entries from its `next`, or a snapshot when those were
    /// compacted. Returns whether a message went out.
    @discardableResult
    mutating func sendAppend(to node: NodeID, sendIfEmpty: Bool = true) -> Bool {
        guard role == .leader, var p = progress[node], !p.isPaused else { return false }
        defer { progress[node] = p }
        let prevIndex = p.next - 1
        if let prevTerm = log.term(at: prevIndex),
           var entries = try? log.entries(from: p.next, maxBytes: options.maxMessageBytes)
        {
            // Empty entries weigh nothing against the byte bound; the count bound is the one
            // every follower enforces.
            if entries.count > options.limits.maxEntries { entries.removeLast(entries.count - options.limits.maxEntries) }
            if entries.isEmpty && !sendIfEmpty { return false }
            leaderOutbox.append(Message(from: id, to: node, term: term,
                                        kind: .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: log.committed)))
            p.sent(count: entries.count, last: entries.last?.index ?? prevIndex)
            return true
        }
        // What the follower needs was compacted: only a snapshot can catch it up.
        guard p.recentActive, let snapshot = try? log.storage.snapshot() else { return false }
        p.becomeSnapshot(snapshot.metadata.index)
        leaderOutbox.append(Message(from: id, to: node, term: term, kind: .snapshot(snapshot)))
        return true
    }

    /// Heartbeats to every member, or to `targets` only (a read round's, `ReadOnlyQueue`).
    mutating func broadcastHeartbeat(context: [UInt8]? = nil, to targets: [NodeID]? = nil) {
        let context = context ?? readOnly.lastPendingContext
        for member in targets ?? configuration.members where member != id {
            // Never tell a follower of a commit index beyond what it is known to hold.
            let commit = min(progress[member]?.match ?? 0, log.committed)
            leaderOutbox.append(Message(from: id, to: member, term: term, kind: .heartbeat(commit: commit, context: context)))
        }
    }

    // MARK: Leader: answers

    mutating func handleAcknowledgement(from node: NodeID, index: Index) {
        guard var p = progress[node] else { return }
        let wasPaused = p.isPaused
        guard p.maybeUpdate(index) else {
            progress[node] = p
            return
        }
        switch p.state {
        case .probe:
            p.becomeReplicate()
        case let .snapshot(pending) where p.match >= pending:
            p.becomeProbe()
            p.becomeReplicate()
        case .snapshot:
            break
        case .replicate:
            p.inflights.free(upTo: index)
        }
        progress[node] = p
        // A new commit index is not broadcast: followers learn it from the next append or
        // heartbeat (Raft §5.3). Under load an append follows within a round trip anyway;
        // when idle, a round of empty appends and acknowledgements per write would compete
        // for the CPU with the next write's critical path.
        maybeCommit()
        if wasPaused {
            sendAppend(to: node)
        }
        // Keep the pipeline full.
        while sendAppend(to: node, sendIfEmpty: false) {}
        if transferee == node, progress[node]?.match == log.lastIndex {
            leaderOutbox.append(Message(from: id, to: node, term: term, kind: .timeoutNow))
        }
    }

    mutating func handleRejection(from node: NodeID, rejected: Index, hintIndex: Index, hintTerm: Term) {
        guard var p = progress[node] else { return }
        var probe = hintIndex
        if hintTerm > 0 {
            // Skip past every entry of ours whose term is above the follower's at that point.
            probe = log.findConflictByTerm(hintIndex, hintTerm).index
        }
        guard p.maybeDecrease(rejected: rejected, hint: probe) else { return }
        if p.state == .replicate { p.becomeProbe() }
        progress[node] = p
        sendAppend(to: node)
    }

    /// The leader's own write finished: its entries now count towards a majority.
    mutating func selfPersisted(upTo index: Index) {
        guard var p = progress[id] else { return }
        let moved = p.maybeUpdate(index)
        progress[id] = p
        if moved { maybeCommit() }
    }

    /// Moves the commit index to the highest index durable on a majority of voters, provided
    /// it is of the current term (Raft §5.4.2).
    @discardableResult
    mutating func maybeCommit() -> Bool {
        let voters = configuration.sortedVoters
        guard !voters.isEmpty else { return false }
        let matches = voters.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        let quorum = min(brokenCommitQuorum ?? configuration.quorum, matches.count)
        let candidate = matches[quorum - 1]
        let hadCommitInTerm = committedInCurrentTerm
        guard log.maybeCommit(candidate, term: term, requireTerm: brokenCommitQuorum == nil) else { return false }
        if !hadCommitInTerm && committedInCurrentTerm {
            releasePendingReads()
        }
        committedConfiguration()
        return true
    }

    // MARK: Leader: clock

    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= options.electionTicks {
            electionElapsed = 0
            if options.checkQuorum {
                if !quorumActive() {
                    becomeFollower(term: term, leader: 0)
                    return
                }
                activeAtLastCheck = Set(configuration.members.filter { progress[$0]?.recentActive == true })
                for member in configuration.members where member != id {
                    progress[member]?.recentActive = false
                }
            }
            // A transfer that did not finish within an election timeout is abandoned.
            transferee = nil
        }
        for member in configuration.members where member != id {
            guard var p = progress[member], case .snapshot = p.state else { continue }
            // A snapshot that got lost is sent again after a while.
            p.snapshotTicks += 1
            if p.snapshotTicks > options.electionTicks * 2 { p.becomeProbe() }
            progress[member] = p
        }
        if heartbeatElapsed >= options.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }
}
