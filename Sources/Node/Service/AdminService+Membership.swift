import API
import GRPCCore
import Raft
import Replica

/// Membership and leadership on a running cluster (`chorus-tools member`, `transfer-leader`).
extension AdminService {
    func members(request: Chorus_V1_MembersRequest, context: ServerContext) async throws -> Chorus_V1_MembersResponse {
        try requireOperator(context)
        return try await membersResponse()
    }

    func addMember(request: Chorus_V1_AddMemberRequest, context: ServerContext) async throws -> Chorus_V1_MembershipChangeResponse {
        try requireOperator(context)
        guard let peer = PeerAddress(request.peerAddress) else {
            throw RPCError(code: .invalidArgument, message: "the peer address '\(request.peerAddress.prefix(100))' is not host:port")
        }
        var client: PeerAddress?
        if !request.clientAddress.isEmpty {
            guard let parsed = PeerAddress(request.clientAddress) else {
                throw RPCError(code: .invalidArgument, message: "the client address '\(request.clientAddress.prefix(100))' is not host:port")
            }
            client = parsed
        }
        // A removed id is spent: a copy of its old data directory could still vote under it.
        // This node knows it was a member if it saw it leave, or ever heard from it (only a
        // member is heard: `MemberDirectory.refusal`).
        if !directory.configuration.members.contains(request.id), directory.wasMember(request.id) || incarnations.knows(request.id) {
            throw RPCError(code: .failedPrecondition, message: "node \(request.id) was a member of this cluster and was removed: a removed id is spent (a copy of its old data could still vote under it). Add the machine under a new id with an empty data directory")
        }
        // Not while the leader raises the cluster version (`PeerVersions.begin`).
        let versions = replica.machine.versions
        guard versions.begin(.addingMember) else {
            throw RPCError(code: .failedPrecondition, message: "the cluster version is being raised right now; add the member again in a moment")
        }
        let index: UInt64
        do {
            defer { versions.end() }
            index = try await change(.addLearner(request.id, context: MemberDirectory.Addresses(peer: peer, client: client).context))
        }
        var response = Chorus_V1_MembershipChangeResponse.with { $0.index = index }
        if request.promoteWhenCaughtUp {
            if try await waitUntilCaughtUp(request.id, within: .seconds(120)) {
                response.index = try await change(.promote(request.id))
                response.promoted = true
            }
        }
        response.members = try await membersResponse()
        return response
    }

    func promoteMember(request: Chorus_V1_PromoteMemberRequest, context: ServerContext) async throws -> Chorus_V1_MembershipChangeResponse {
        try requireOperator(context)
        let index = try await change(.promote(request.id))
        let members = try await membersResponse()
        return .with { $0.index = index; $0.promoted = true; $0.members = members }
    }

    func removeMember(request: Chorus_V1_RemoveMemberRequest, context: ServerContext) async throws -> Chorus_V1_MembershipChangeResponse {
        try requireOperator(context)
        let index = try await change(.remove(request.id, force: request.force))
        let members = try await membersResponse()
        return .with { $0.index = index; $0.members = members }
    }

    func transferLeadership(request: Chorus_V1_TransferLeadershipRequest, context: ServerContext) async throws -> Chorus_V1_TransferLeadershipResponse {
        try requireOperator(context)
        let status = try await currentStatus()
        guard status.role == .leader else { throw configuration.rpcError(.notLeader(leader: status.leader == 0 ? nil : status.leader)) }
        guard status.members.contains(where: { $0.id == request.to && $0.voter }) else {
            throw RPCError(code: .failedPrecondition, message: "node \(request.to) is not a voter of this cluster")
        }
        guard request.to != status.id else {
            return .with { $0.leaderID = status.id; $0.term = status.term }
        }
        let clock = ContinuousClock()
        let start = clock.now
        // The core abandons a transfer after an election timeout; ask again until it happens.
        while clock.now - start < .seconds(10) {
            replica.transferLeadership(to: request.to)
            try await Task.sleep(for: .milliseconds(50))
            let now = try await currentStatus()
            if now.leader == request.to || (now.role != .leader && now.leader != 0) {
                let elapsed = clock.now - start
                return .with {
                    $0.leaderID = now.leader
                    $0.term = now.term
                    $0.durationMs = UInt64(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                }
            }
        }
        throw RPCError(code: .unavailable, message: "node \(request.to) did not take over within 10 s (is it caught up and reachable?)")
    }

    // MARK: Helpers

    func change(_ request: MembershipRequest) async throws -> UInt64 {
        do {
            return try await replica.changeMembership(request)
        } catch {
            throw configuration.rpcError(error)
        }
    }

    func currentStatus() async throws -> ReplicaStatus {
        do {
            return try await replica.status()
        } catch {
            throw configuration.rpcError(error)
        }
    }

    /// Whether `node` came within 1,000 entries of the leader's log in time.
    func waitUntilCaughtUp(_ node: NodeID, within limit: Duration) async throws -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + limit
        while clock.now < end {
            let status = try await currentStatus()
            guard status.role == .leader else { throw configuration.rpcError(.leadershipLost(leader: status.leader == 0 ? nil : status.leader)) }
            if let member = status.members.first(where: { $0.id == node }), member.matchIndex + 1_000 >= status.lastIndex, member.matchIndex > 0 {
                return true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func membersResponse() async throws -> Chorus_V1_MembersResponse {
        let status = try await currentStatus()
        return .with { response in
            response.nodeID = status.id
            response.leaderID = status.leader
            response.term = status.term
            response.commitIndex = status.commitIndex
            response.lastIndex = status.lastIndex
            response.members = status.members.map { member in
                let addresses = configuration.directory?.addresses(of: member.id)
                return .with {
                    $0.id = member.id
                    $0.voter = member.voter
                    $0.peerAddress = addresses?.peer.description ?? ""
                    $0.clientAddress = configuration.clientAddress(of: member.id)?.description ?? ""
                    $0.matchIndex = member.matchIndex
                    $0.active = member.active
                }
            }
        }
    }
}
