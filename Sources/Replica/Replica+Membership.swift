import Raft

/// What an operator asks of the membership (see `Replica.changeMembership`).
public enum MembershipRequest: Sendable, Equatable {
    /// Adds `node` as a learner: it receives the log (or a snapshot) but does not vote.
    /// `context` is recorded with it in the configuration (the node keeps the new member's
    /// addresses there, `MemberDirectory.Addresses.context`).
    case addLearner(NodeID, context: [UInt8])
    /// Makes a learner a voter.
    case promote(NodeID)
    /// Removes a member. Refused for the leader itself (transfer leadership first), and, unless
    /// `force`, when the voters left would not have a live majority.
    case remove(NodeID, force: Bool)
}

extension Replica {
    /// Changes the membership by one server and waits until the change is applied here;
    /// returns the index of its entry. Only the leader takes changes, one at a time.
    public func changeMembership(_ request: MembershipRequest) async throws(ReplicaError) -> Index {
        let result: Result<Index, ReplicaError> = await withCheckedContinuation { continuation in
            submit(.changeMembership(request, { continuation.resume(returning: $0) }))
        }
        return try result.get()
    }

    /// When this node leads, hands leadership to the most caught-up voter that answers and
    /// waits (up to `limit`) until it no longer leads; returns the successor, if any.
    public func handOverLeadership(within limit: Duration = .seconds(1)) async -> NodeID? {
        guard let status = try? await status(), status.role == .leader else { return nil }
        let candidates = status.members.filter { $0.voter && $0.id != id && $0.active }
        guard let target = candidates.max(by: { $0.matchIndex < $1.matchIndex })?.id else { return nil }
        let clock = ContinuousClock()
        let end = clock.now + limit
        while clock.now < end {
            transferLeadership(to: target)
            try? await Task.sleep(for: .milliseconds(20))
            guard let now = try? await self.status() else { return nil }
            if now.role != .leader { return now.leader == 0 ? target : now.leader }
        }
        return nil
    }
}

extension Replica.Loop {
    /// Tells the directory and the links of a new configuration, before any message of the
    /// next `Ready` (some may be for a member just added) is sent.
    func membershipMayHaveChanged() {
        guard core.configurationVersion != knownConfigurationVersion else { return }
        knownConfigurationVersion = core.configurationVersion
        let configuration = core.configuration
        let before = knownConfiguration
        knownConfiguration = configuration
        transport.configurationChanged(configuration)
        if !before.isEmpty {
            logger.notice("membership: voters \(configuration.sortedVoters), learners \(configuration.learners.sorted())")
        }
    }

    func changeMembership(_ request: MembershipRequest, _ reply: @escaping ReplicaReply<Index>) {
        guard core.isLeader else {
            reply(.failure(.notLeader(leader: knownLeader)))
            return
        }
        // A removal that is not forced checks who answers the leader, which a leader elected
        // a moment ago does not know yet: it waits for the first quorum check too.
        let needsLiveness = if case let .remove(node, force) = request { !force && core.configuration.voters.contains(node) } else { false }
        guard core.committedInCurrentTerm, !needsLiveness || core.knowsWhoIsActive else {
            guard membershipWaitingForTerm.count < Self.membershipWaitingLimit else {
                return reply(.failure(.membershipRefused("\(Self.membershipWaitingLimit) membership changes already wait for this new leader's first commit; try again in a moment")))
            }
            membershipWaitingForTerm.append((request, reply, clock.now + options.proposalTimeout))
            return
        }
        let current = core.configuration
        let change: ConfigurationChange
        switch request {
        case let .addLearner(node, context):
            guard node > 0, node <= MessageLimits().maxValue else { return reply(.failure(.membershipRefused("node ids are positive, at most 2^62"))) }
            guard !current.members.contains(node) else {
                return reply(.failure(.membershipRefused("node \(node) is a member already (\(current.voters.contains(node) ? "voter" : "learner"))")))
            }
            change = ConfigurationChange(.addLearner, node, context: context)
        case let .promote(node):
            guard current.learners.contains(node) else {
                return reply(.failure(.membershipRefused(current.voters.contains(node) ? "node \(node) is a voter already" : "node \(node) is not a learner of this cluster; add it first")))
            }
            change = ConfigurationChange(.addVoter, node)
        case let .remove(node, force):
            guard current.members.contains(node) else { return reply(.failure(.membershipRefused("node \(node) is not a member"))) }
            guard node != core.id else {
                return reply(.failure(.membershipRefused("node \(node) leads the cluster: transfer leadership to another voter first (chorus-tools transfer-leader), then remove it")))
            }
            if current.voters.contains(node) && !force {
                let remaining = current.voters.subtracting([node])
                let live = remaining.filter { $0 == core.id || core.isRecentlyActive($0) }
                let quorum = remaining.count / 2 + 1
                guard live.count >= quorum else {
                    return reply(.failure(.membershipRefused("removing node \(node) would leave \(remaining.count) voters of which only \(live.count) answer, fewer than the \(quorum) a majority needs; bring members back first, or force it")))
                }
            }
            change = ConfigurationChange(.remove, node)
        }
        guard core.proposeConfigurationChange(change) else {
            return reply(.failure(.membershipRefused("a membership change (or a leadership transfer) is still in progress; one at a time")))
        }
        let index = core.lastIndex
        requests.changeMembership(at: index, .init(term: core.term, deadline: clock.now + options.proposalTimeout * 2, reply: reply))
        logger.notice("proposed membership change at \(index): \(change.kind) node \(change.node)")
    }

    /// Most membership changes that wait for a new leader's first commit.
    static var membershipWaitingLimit: Int { 16 }

    /// Proposes the membership changes that waited for this leader's first commit once it has
    /// one; fails them if leadership was lost or they waited too long.
    func proposeMembershipWaitingForTerm() {
        guard !membershipWaitingForTerm.isEmpty else { return }
        if !core.isLeader {
            let waiting = membershipWaitingForTerm
            membershipWaitingForTerm = []
            for (_, reply, _) in waiting { reply(.failure(.leadershipLost(leader: knownLeader))) }
        } else if core.committedInCurrentTerm {
            let waiting = membershipWaitingForTerm
            membershipWaitingForTerm = []
            // One at a time still holds: the first is proposed, the rest are refused as usual
            // (a removal that still waits for the first quorum check goes back in the list).
            for (request, reply, deadline) in waiting {
                let before = membershipWaitingForTerm.count
                changeMembership(request, reply)
                if membershipWaitingForTerm.count > before { membershipWaitingForTerm[before].deadline = deadline }
            }
            expireMembershipWaitingForTerm()
        } else {
            expireMembershipWaitingForTerm()
        }
    }

    private func expireMembershipWaitingForTerm() {
        let now = clock.now
        let expired = membershipWaitingForTerm.filter { $0.deadline < now }
        membershipWaitingForTerm.removeAll { $0.deadline < now }
        for (_, reply, _) in expired { reply(.failure(.timedOut)) }
    }

    /// A configuration entry was applied: answer the operator who asked for it.
    func membershipApplied(_ index: Index, _ change: ConfigurationChange) {
        switch requests.membershipApplied(at: index, term: core.term(at: index)) {
        case let .applied(reply)?: reply(.success(index))
        case let .superseded(reply)?: reply(.failure(.leadershipLost(leader: knownLeader)))
        case nil: break
        }
    }
}
