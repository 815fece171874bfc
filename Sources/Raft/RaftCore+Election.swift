extension RaftCore {
    enum ElectionKind {
        case preVote
        case election
        /// Leadership transfer: a real election that voters honour despite a live leader.
        case transfer
    }

    mutating func tickElection() {
        electionElapsed += 1
        if promotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            // A pre-vote that gathers no answer is retried after a timeout of its own.
            drawElectionTimeout()
            startElection(options.preVote ? .preVote : .election)
        }
    }

    /// An election timeout between one and two `electionTicks`, or, for a few elections after
    /// the leader's connection closed, up to half of one: a split vote among the survivors is
    /// then settled as quickly as the first election would have been.
    mutating func drawElectionTimeout() {
        if quickTimeouts > 0 {
            quickTimeouts -= 1
            randomizedElectionTimeout = quickElectionDelay()
        } else {
            randomizedElectionTimeout = options.electionTicks + Int.random(in: 0..<options.electionTicks, using: &random)
        }
    }

    mutating func quickElectionDelay() -> Int {
        1 + Int.random(in: 0..<max(1, options.electionTicks / 2), using: &random)
    }

    /// A follower hears its leader (an append, a heartbeat, a snapshot).
    mutating func heardFromLeader(_ node: NodeID) {
        electionElapsed = 0
        leader = node
        if quickTimeouts > 0 || randomizedElectionTimeout < options.electionTicks {
            // The leader is back (or a new one won): the ordinary timeout again.
            quickTimeouts = 0
            drawElectionTimeout()
        }
    }

    mutating func startElection(_ kind: ElectionKind) {
        let requestTerm: Term
        if kind == .preVote {
            becomePreCandidate()
            requestTerm = term + 1
        } else {
            becomeCandidate()
            requestTerm = term
        }
        if recordVote(from: id, granted: true, preVote: kind == .preVote) { return }
        for voter in configuration.sortedVoters where voter != id {
            let kindOfRequest: Message.Kind = kind == .preVote
                ? .preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm)
                : .vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm, transfer: kind == .transfer)
            outbox.append(Message(from: id, to: voter, term: requestTerm, kind: kindOfRequest))
        }
    }

    /// The transport saw its connection from `node` close. A process that dies (a crash,
    /// SIGKILL, an OOM kill) has its sockets closed by the kernel at once, so when `node` is
    /// this follower's leader it is most likely gone, and waiting a whole election timeout
    /// for its silence to prove it costs every writer 150–300 ms. The follower stops honouring
    /// the leader's lease and campaigns after a short random delay (up to half the
    /// election timeout, so the survivors do not all campaign in the same tick and split the
    /// vote).
    ///
    /// Nothing relies on this for safety. When the leader is in fact alive (its connection
    /// was reset, not the process), its next heartbeat restores the lease before or during
    /// the campaign, and the campaign starts with a pre-vote that fails while the other voters
    /// still hear the leader. Returns whether `node` was this follower's leader.
    @discardableResult
    public mutating func connectionLost(to node: NodeID) -> Bool {
        guard role == .follower, node != 0, node == leader, promotable else { return false }
        let delay = quickElectionDelay()
        // Past the lease: pre-votes from the other survivors are answered from now on.
        electionElapsed = max(electionElapsed, options.electionTicks)
        if randomizedElectionTimeout - electionElapsed > delay {
            randomizedElectionTimeout = electionElapsed + delay
        }
        // The pre-vote and election this starts, and about two more should the survivors
        // split the vote, are timed as quickly; then the ordinary timeout resumes.
        quickTimeouts = Self.quickTimeoutsAfterConnectionLoss
        return true
    }

    static let quickTimeoutsAfterConnectionLoss = 6

    /// Counts a (pre-)vote; returns true when the election was decided by it.
    @discardableResult
    mutating func recordVote(from node: NodeID, granted: Bool, preVote: Bool) -> Bool {
        guard configuration.voters.contains(node) else { return false }
        if votes[node] == nil { votes[node] = granted }
        let yes = votes.values.filter { $0 }.count
        let no = votes.count - yes
        if yes >= configuration.quorum {
            if preVote {
                startElection(.election)
            } else {
                becomeLeader()
                broadcastAppend()
            }
            return true
        }
        if no >= configuration.quorum {
            becomeFollower(term: term, leader: 0)
            return true
        }
        return false
    }

    /// Answers a (pre-)vote request whose term is not older than ours.
    mutating func handleVoteRequest(_ m: Message, lastIndex: Index, lastTerm: Term, preVote: Bool) {
        let canVote = vote == m.from
            || (vote == 0 && leader == 0)
            || (preVote && m.term > term)
        let granted = canVote && log.isUpToDate(lastIndex: lastIndex, term: lastTerm)
        if granted && !preVote {
            electionElapsed = 0
            vote = m.from
        }
        let responseTerm = granted ? m.term : term
        outbox.append(Message(from: id, to: m.from, term: responseTerm,
                              kind: preVote ? .preVoteResponse(reject: !granted) : .voteResponse(reject: !granted)))
    }

    /// Check-quorum: a leader that heard from no majority in an election timeout may have
    /// been partitioned away; it steps down instead of serving stale reads.
    func quorumActive() -> Bool {
        let active = configuration.sortedVoters.filter { $0 == id || progress[$0]?.recentActive == true }
        return active.count >= configuration.quorum
    }

    // MARK: Leadership transfer

    /// Hands leadership to `target` once its log is caught up. Proposals are refused until the
    /// transfer ends; it is abandoned after one election timeout.
    public mutating func transferLeadership(to target: NodeID) {
        guard role == .leader, target != id, configuration.voters.contains(target), transferee != target else { return }
        transferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            leaderOutbox.append(Message(from: id, to: target, term: term, kind: .timeoutNow))
        } else {
            sendAppend(to: target)
        }
    }
}
