import API
import GRPCCore

/// Group conversations (cluster version 3 on; before it every call fails with
/// FAILED_PRECONDITION saying so). A group is named by its name. Its messages arrive as
/// direct ones do: `readUndelivered`, `acknowledge` and subscriptions carry them, with
/// `ChatMessage.group` set.
extension ChorusClient {
    /// Creates a group with the caller (its first admin) and `members`; returns its id.
    @discardableResult
    public func createGroup(token: String, name: String, members: [String]) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.createGroup(.with { $0.requestID = id; $0.token = token; $0.name = name; $0.members = members },
                                       metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.groupID
    }

    /// Adds accounts (an admin's call); returns how many were not members already.
    @discardableResult
    public func addGroupMembers(token: String, group: String, members: [String]) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.addGroupMembers(.with { $0.requestID = id; $0.token = token; $0.group = group; $0.members = members },
                                           metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.changed
    }

    /// Removes members (an admin's call); returns how many.
    @discardableResult
    public func removeGroupMembers(token: String, group: String, members: [String]) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.removeGroupMembers(.with { $0.requestID = id; $0.token = token; $0.group = group; $0.members = members },
                                              metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.changed
    }

    public func leaveGroup(token: String, group: String) async throws {
        _ = try await write { id, stub in
            try await stub.leaveGroup(.with { $0.requestID = id; $0.token = token; $0.group = group }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    public func renameGroup(token: String, group: String, to name: String) async throws {
        _ = try await write { id, stub in
            try await stub.renameGroup(.with { $0.requestID = id; $0.token = token; $0.group = group; $0.name = name },
                                       metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    /// Makes `member` an admin of `group`, or (`admin: false`) no longer one.
    public func setGroupAdmin(token: String, group: String, member: String, admin: Bool) async throws {
        _ = try await write { id, stub in
            try await stub.setGroupAdmin(.with { $0.requestID = id; $0.token = token; $0.group = group; $0.member = member; $0.admin = admin },
                                         metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    /// Sends to every member of `group`; returns the message's id. Retried safely: stored once.
    public func sendToGroup(token: String, group: String, body: String) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.sendGroupMessage(.with { $0.requestID = id; $0.token = token; $0.group = group; $0.body = body },
                                            metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.messageID
    }

    /// Sends to a group under a request id the caller keeps (see `send(token:to:body:requestID:)`).
    public func sendToGroup(token: String, group: String, body: String, requestID: ChorusRequestID) async throws -> UInt64 {
        let request = Chorus_V1_SendGroupMessageRequest.with { $0.requestID = requestID.proto; $0.token = token; $0.group = group; $0.body = body }
        return try await withLeader(write: true, node: { node in
            try await stubs[node].sendGroupMessage(request, metadata: ForwardedFor.metadata, options: Self.callOptions).messageID
        })
    }

    /// The caller's groups by name, with its unread count in each.
    public func groups(token: String) async throws -> [GroupSummary] {
        try await withLeader { try await $0.listGroups(.with { $0.token = token }, metadata: ForwardedFor.metadata, options: Self.callOptions) }
            .groups.map { GroupSummary(name: $0.name, id: $0.id, memberCount: $0.memberCount, admin: $0.admin, unreadCount: $0.unreadCount) }
    }

    public func groupMembers(token: String, group: String) async throws -> [GroupMember] {
        try await withLeader { try await $0.groupMembers(.with { $0.token = token; $0.group = group }, metadata: ForwardedFor.metadata, options: Self.callOptions) }
            .members.map { GroupMember(name: $0.name, admin: $0.admin, online: $0.online) }
    }

    /// A group's conversation, messages and changes, newest first unless `oldestFirst`.
    public func groupHistory(token: String, group: String, pageSize: Int = 20, pageToken: String? = nil, oldestFirst: Bool = false) async throws -> HistoryPage {
        let response = try await withLeader {
            try await $0.groupHistory(.with {
                $0.token = token
                $0.group = group
                $0.pageSize = UInt32(clamping: pageSize)
                $0.pageToken = pageToken ?? ""
                $0.oldestFirst = oldestFirst
            }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
        return HistoryPage(messages: response.messages.map(ChatMessage.init), nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken)
    }
}
