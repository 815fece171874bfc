import API
import Foundation
import GRPCCore
import Projections

/// Group conversations (cluster version 3 on). Writes are one command each, applied against
/// the group as the log has it then (by name: a rename between proposing and applying makes
/// the command refer to no group, on every replica alike); reads wait for a barrier as every
/// read does, and show a group only to its members.
extension ChatService {
    func createGroup(request: Chorus_V1_CreateGroupRequest, context: ServerContext) async throws -> Chorus_V1_CreateGroupResponse {
        try mapRejection {
            try Validation.groupName(request.name)
            try Validation.memberNames(request.members, required: false)
        }
        let id = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .createGroup(.with {
                $0.tokenHash = Data(hash)
                $0.name = request.name
                $0.members = request.members
            })
        }
        return .with { $0.groupID = id }
    }

    func addGroupMembers(request: Chorus_V1_ChangeGroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_ChangeGroupMembersResponse {
        try validateMemberChange(request)
        let changed = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .addGroupMembers(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
                $0.members = request.members
            })
        }
        return .with { $0.changed = changed }
    }

    func removeGroupMembers(request: Chorus_V1_ChangeGroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_ChangeGroupMembersResponse {
        try validateMemberChange(request)
        let changed = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .removeGroupMembers(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
                $0.members = request.members
            })
        }
        return .with { $0.changed = changed }
    }

    func leaveGroup(request: Chorus_V1_LeaveGroupRequest, context: ServerContext) async throws -> Chorus_V1_LeaveGroupResponse {
        try mapRejection { try Validation.groupName(request.group) }
        _ = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .leaveGroup(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
            })
        }
        return .init()
    }

    func renameGroup(request: Chorus_V1_RenameGroupRequest, context: ServerContext) async throws -> Chorus_V1_RenameGroupResponse {
        try mapRejection {
            try Validation.groupName(request.group)
            try Validation.groupName(request.name)
        }
        _ = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .renameGroup(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
                $0.name = request.name
            })
        }
        return .init()
    }

    func setGroupAdmin(request: Chorus_V1_SetGroupAdminRequest, context: ServerContext) async throws -> Chorus_V1_SetGroupAdminResponse {
        try mapRejection {
            try Validation.groupName(request.group)
            try Validation.accountName(request.member)
        }
        _ = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .setGroupAdmin(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
                $0.member = request.member
                $0.admin = request.admin
            })
        }
        return .init()
    }

    func sendGroupMessage(request: Chorus_V1_SendGroupMessageRequest, context: ServerContext) async throws -> Chorus_V1_SendMessageResponse {
        try mapRejection {
            try Validation.groupName(request.group)
            try Validation.messageBody(request.body)
        }
        let id = try await proposeGroupCommand(request.requestID, token: request.token, context) { hash in
            .sendGroupMessage(.with {
                $0.tokenHash = Data(hash)
                $0.group = request.group
                $0.body = request.body
            })
        }
        return .with { $0.messageID = id }
    }

    func listGroups(request: Chorus_V1_ListGroupsRequest, context: ServerContext) async throws -> Chorus_V1_ListGroupsResponse {
        let session = try await authenticate(request.token, context)
        let groups = try state.groups(of: session.userID)
        return .with {
            $0.groups = groups.map { group in
                .with {
                    $0.name = group.name
                    $0.id = group.id
                    $0.memberCount = group.memberCount
                    $0.admin = group.admin
                    $0.unreadCount = group.unread
                }
            }
        }
    }

    func groupMembers(request: Chorus_V1_GroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_GroupMembersResponse {
        let session = try await authenticate(request.token, context)
        let group = try self.group(request.group, of: session)
        let members = try state.members(ofGroup: group.id)
        return .with {
            $0.name = group.name
            $0.members = members.map { member in .with { $0.name = member.name; $0.admin = member.admin; $0.online = member.online } }
        }
    }

    func groupHistory(request: Chorus_V1_GroupHistoryRequest, context: ServerContext) async throws -> Chorus_V1_HistoryResponse {
        let session = try await authenticate(request.token, context)
        let group = try self.group(request.group, of: session)
        let page = try mapRejection {
            try state.groupHistory(
                group.id,
                limit: request.pageSize == 0 ? 50 : Int(request.pageSize),
                pageToken: request.pageToken.isEmpty ? nil : request.pageToken,
                newestFirst: !request.oldestFirst,
                reader: session.userID
            )
        }
        return Self.history(page)
    }

    // MARK: Helpers

    /// The group named `name`, if the session's user is in it; a group it is not in is
    /// answered as one that does not exist, as the log answers it.
    private func group(_ name: String, of session: SessionRow) throws -> GroupRow {
        guard let group = try mapRejection({ try state.group(named: name, member: session.userID) }) else {
            throw RPCError(code: .notFound, message: "\(session.name) is in no group named '\(name)'")
        }
        return group
    }

    private func validateMemberChange(_ request: Chorus_V1_ChangeGroupMembersRequest) throws {
        try mapRejection {
            try Validation.groupName(request.group)
            try Validation.memberNames(request.members, required: true)
        }
    }

    /// Proposes a group command once the cluster runs version 3.
    private func proposeGroupCommand(_ requestID: Chorus_V1_RequestID, token: String, _ context: ServerContext,
                                     _ kind: ([UInt8]) throws -> Command.OneOf_Kind) async throws -> UInt64 {
        try await proposeAsSession(requestID, token: token, context, needing: 3, feature: Rejection.groupsFeature, kind)
    }
}
