extension RaftCore {
    /// Feeds one message from a peer. Returns why it was refused, if it was: a message
    /// outside `options.limits`, from a stranger, or contradicting the committed log changes
    /// nothing.
    @discardableResult
    public mutating func step(_ m: Message) -> Refusal? {
        if let refusal = validate(m) { return refusal }
        if m.term > term {
            if m.isVoteRequest {
                let transfer: Bool = if case let .vote(_, _, t) = m.kind { t } else { false }
                // Leader lease (check-quorum): while we hear from a leader, a server that
                // wants an election is the one that is cut off; ignore it.
                let inLease = options.checkQuorum && leader != 0 && electionElapsed < options.electionTicks
                if !transfer && inLease { return nil }
            }
            switch m.kind {
            case .preVote:
                break  // pre-votes never change our term
            case .preVoteResponse(let reject) where !reject:
                break  // a granted pre-vote carries the future term; not ours yet
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: 0)
            }
        } else if m.term < term {
            switch m.kind {
            case .append, .heartbeat:
                // A deposed leader (perhaps cut off, using pre-vote or check-quorum so it
                // never saw our election) learns the new term from this answer.
                if options.checkQuorum || options.preVote {
                    outbox.append(Message(from: id, to: m.from, term: term, kind: .appendResponse(index: 0, reject: false, hintIndex: 0, hintTerm: 0)))
                }
            case .preVote:
                outbox.append(Message(from: id, to: m.from, term: term, kind: .preVoteResponse(reject: true)))
            default:
                break
            }
            return nil
        }

        switch m.kind {
        case let .preVote(lastIndex, lastTerm):
            handleVoteRequest(m, lastIndex: lastIndex, lastTerm: lastTerm, preVote: true)
        case let .vote(lastIndex, lastTerm, _):
            handleVoteRequest(m, lastIndex: lastIndex, lastTerm: lastTerm, preVote: false)
        default:
            switch role {
            case .leader: stepLeader(m)
            case .preCandidate, .candidate: return stepCandidate(m)
            case .follower: return stepFollower(m)
            }
        }
        return nil
    }

    mutating func stepFollower(_ m: Message) -> Refusal? {
        switch m.kind {
        case .append:
            heardFromLeader(m.from)
            return handleAppend(m)
        case .heartbeat:
            heardFromLeader(m.from)
            handleHeartbeat(m)
        case .snapshot:
            heardFromLeader(m.from)
            handleSnapshot(m)
        case .timeoutNow:
            // Only the leader of this term may hand its leadership over (a server that
            // restarted in this term may not know who that is yet).
            guard leader == 0 || m.from == leader else { return .unknownSender }
            if promotable { startElection(.transfer) }
        case let .readIndexResponse(index, context):
            // Only the leader of this term confirms reads; it is the one this server asked. A
            // server that knows no leader yet (it restarted) asked nobody: the answer is to an
            // earlier process's read, and is dropped with the rest.
            guard m.from == leader || leader == 0 else { return .unknownSender }
            readIndexAnswered(index: index, context: context)
        default:
            break
        }
        return nil
    }

    mutating func stepCandidate(_ m: Message) -> Refusal? {
        switch m.kind {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            return handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case let .preVoteResponse(reject) where role == .preCandidate:
            recordVote(from: m.from, granted: !reject, preVote: true)
        case let .voteResponse(reject) where role == .candidate:
            recordVote(from: m.from, granted: !reject, preVote: false)
        default:
            break
        }
        return nil
    }

    mutating func stepLeader(_ m: Message) {
        guard var p = progress[m.from] else { return }
        switch m.kind {
        case let .appendResponse(index, reject, hintIndex, hintTerm):
            p.recentActive = true
            progress[m.from] = p
            if reject {
                handleRejection(from: m.from, rejected: index, hintIndex: hintIndex, hintTerm: hintTerm)
            } else {
                handleAcknowledgement(from: m.from, index: index)
            }
        case let .heartbeatResponse(context):
            p.recentActive = true
            p.probeSent = false
            if p.state == .replicate && p.inflights.isFull {
                p.inflights.freeFirst()
            }
            progress[m.from] = p
            if p.match < log.lastIndex {
                sendAppend(to: m.from)
            }
            if let context {
                confirmRead(context, from: m.from)
            }
        case let .readIndex(context):
            handleReadIndex(ReadRequest(from: m.from, context: context))
        default:
            break
        }
    }

    // MARK: Follower side of replication

    mutating func handleAppend(_ m: Message) -> Refusal? {
        guard case let .append(prevIndex, prevTerm, entries, commit) = m.kind else { return nil }
        if prevIndex < log.committed {
            respond(to: m.from, index: log.committed)
            return nil
        }
        let appended: Index?
        switch log.maybeAppend(prevIndex: prevIndex, prevTerm: prevTerm, commit: commit, entries: entries) {
        case let .success(lastNew): appended = lastNew
        case let .failure(refusal): return refusal
        }
        if let lastNew = appended {
            if !entries.isEmpty {
                configurationMayHaveChanged(appended: entries)
            }
            respond(to: m.from, index: lastNew)
        } else {
            // Fast backtracking: tell the leader the last index whose term is ≤ prevTerm, so
            // it skips every entry of a conflicting term at once.
            let (hintIndex, hintTerm) = log.findConflictByTerm(min(prevIndex, log.lastIndex), prevTerm)
            outbox.append(Message(from: id, to: m.from, term: term,
                                  kind: .appendResponse(index: prevIndex, reject: true, hintIndex: hintIndex, hintTerm: hintTerm)))
        }
        return nil
    }

    mutating func handleHeartbeat(_ m: Message) {
        guard case let .heartbeat(commit, context) = m.kind else { return }
        log.commitTo(min(commit, log.lastIndex))
        outbox.append(Message(from: id, to: m.from, term: term, kind: .heartbeatResponse(context: context)))
    }

    mutating func handleSnapshot(_ m: Message) {
        guard case let .snapshot(snapshot) = m.kind else { return }
        if restore(snapshot) {
            respond(to: m.from, index: log.lastIndex)
        } else {
            respond(to: m.from, index: log.committed)
        }
    }

    /// Installs `snapshot` unless our log already covers it. Returns whether it did.
    mutating func restore(_ snapshot: Snapshot) -> Bool {
        let meta = snapshot.metadata
        guard meta.index > log.committed else { return false }
        if log.matchTerm(meta.index, meta.term) {
            // We hold the entry: only the commit index moves.
            log.commitTo(meta.index)
            return false
        }
        log.restore(snapshot)
        if planted(.restoreKeepsConfigurationVersion) {
            configuration = meta.configuration
            configurationIndex = meta.index
        } else {
            // Counted in `configurationVersion`: the driver refreshes its peers from it.
            apply(configuration: meta.configuration, at: meta.index)
        }
        resetProgress()
        return true
    }

    mutating func respond(to leader: NodeID, index: Index) {
        outbox.append(Message(from: id, to: leader, term: term, kind: .appendResponse(index: index, reject: false, hintIndex: 0, hintTerm: 0)))
    }
}
