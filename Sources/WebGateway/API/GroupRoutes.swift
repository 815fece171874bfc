import Client
import Foundation
import Hummingbird

/// Group conversations: the caller's groups, creating one, its conversation and its members,
/// and what admins do. A group is named by its name in the path.
struct GroupRoutes: Sendable {
    let services: GatewayServices

    func add(to api: RouterGroup<GatewayContext>) {
        api.get("groups", use: list)
        api.post("groups", use: create)
        api.get("groups/:group/messages", use: history)
        api.post("groups/:group/messages", use: send)
        api.get("groups/:group/members", use: members)
        api.post("groups/:group/members", use: addMembers)
        api.post("groups/:group/members/remove", use: removeMembers)
        api.post("groups/:group/admins", use: setAdmin)
        api.post("groups/:group/rename", use: rename)
        api.post("groups/:group/leave", use: leave)
    }

    @Sendable func list(_ request: Request, _ context: GatewayContext) async throws -> GroupsJSON {
        let session = try SessionCookie.require(request)
        let groups = try await GatewayError.mapping { try await services.client.groups(token: session.token) }
        return GroupsJSON(groups: groups.map { GroupJSON(name: $0.name, members: $0.memberCount, admin: $0.admin, unread: $0.unreadCount) })
    }

    @Sendable func create(_ request: Request, _ context: GatewayContext) async throws -> GroupJSON {
        let session = try SessionCookie.require(request)
        let form = try await request.decode(as: GroupForm.self, context: context)
        let members = try form.memberNames()
        _ = try await GatewayError.mapping { try await services.client.createGroup(token: session.token, name: form.name, members: members) }
        return GroupJSON(name: form.name, members: UInt32(Set(members + [session.user]).count), admin: true, unread: 0)
    }

    /// The group's conversation, newest first, a page at a time: messages and changes.
    @Sendable func history(_ request: Request, _ context: GatewayContext) async throws -> MessagesPage {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let page = try await GatewayError.mapping {
            try await services.client.groupHistory(token: session.token, group: group, pageSize: services.configuration.historyPageSize,
                                                   pageToken: request.uri.queryParameters["page"].map(String.init))
        }
        return MessagesPage(messages: page.messages.map(MessageJSON.init), next: page.nextPageToken)
    }

    /// Sends under the page's key, as a direct send does (`ChatRoutes.send`).
    @Sendable func send(_ request: Request, _ context: GatewayContext) async throws -> MessageJSON {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let form = try await request.decode(as: SendForm.self, context: context)
        let requestID = try form.key?.requestID(token: session.token)
        let id = try await GatewayError.mapping {
            if let requestID { return try await services.client.sendToGroup(token: session.token, group: group, body: form.body, requestID: requestID) }
            return try await services.client.sendToGroup(token: session.token, group: group, body: form.body)
        }
        var message = MessageJSON(id: id, from: session.user, to: "", body: form.body, sentUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
        message.group = group
        return message
    }

    @Sendable func members(_ request: Request, _ context: GatewayContext) async throws -> MembersJSON {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let members = try await GatewayError.mapping { try await services.client.groupMembers(token: session.token, group: group) }
        return MembersJSON(members: members.map { MemberJSON(name: $0.name, admin: $0.admin, online: $0.online) })
    }

    @Sendable func addMembers(_ request: Request, _ context: GatewayContext) async throws -> Changed {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let names = try await request.decode(as: NamesForm.self, context: context).memberNames()
        return Changed(changed: try await GatewayError.mapping { try await services.client.addGroupMembers(token: session.token, group: group, members: names) })
    }

    @Sendable func removeMembers(_ request: Request, _ context: GatewayContext) async throws -> Changed {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let names = try await request.decode(as: NamesForm.self, context: context).memberNames()
        return Changed(changed: try await GatewayError.mapping { try await services.client.removeGroupMembers(token: session.token, group: group, members: names) })
    }

    @Sendable func setAdmin(_ request: Request, _ context: GatewayContext) async throws -> Changed {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let form = try await request.decode(as: AdminForm.self, context: context)
        try await GatewayError.mapping { try await services.client.setGroupAdmin(token: session.token, group: group, member: form.name, admin: form.admin) }
        return Changed(changed: 1)
    }

    @Sendable func rename(_ request: Request, _ context: GatewayContext) async throws -> GroupJSON {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        let form = try await request.decode(as: RenameForm.self, context: context)
        try await GatewayError.mapping { try await services.client.renameGroup(token: session.token, group: group, to: form.name) }
        return GroupJSON(name: form.name, members: 0, admin: true, unread: 0)
    }

    @Sendable func leave(_ request: Request, _ context: GatewayContext) async throws -> Changed {
        let session = try SessionCookie.require(request)
        let group = try context.parameters.decoded("group")
        try await GatewayError.mapping { try await services.client.leaveGroup(token: session.token, group: group) }
        return Changed(changed: 1)
    }
}

struct GroupJSON: ResponseEncodable {
    var name: String
    var members: UInt32
    var admin: Bool
    var unread: UInt64
}

struct GroupsJSON: ResponseEncodable {
    var groups: [GroupJSON]
}

struct MemberJSON: ResponseEncodable {
    var name: String
    var admin: Bool
    var online: Bool
}

struct MembersJSON: ResponseEncodable {
    var members: [MemberJSON]
}

struct Changed: ResponseEncodable {
    var changed: UInt64
}

/// `POST /api/groups`: a name and the first members besides the caller.
struct GroupForm: Decodable {
    var name: String
    var members: [String]?

    func memberNames() throws -> [String] {
        try NamesForm(names: members ?? []).memberNames(allowingNone: true)
    }
}

struct NamesForm: Decodable {
    var names: [String]

    /// At most a group's worth of names; the cluster checks each.
    func memberNames(allowingNone: Bool = false) throws -> [String] {
        guard allowingNone || !names.isEmpty else { throw HTTPError(.badRequest, message: "Name at least one account.") }
        guard names.count <= 1_000 else { throw HTTPError(.badRequest, message: "Name at most 1000 accounts at a time.") }
        return names
    }
}

struct AdminForm: Decodable {
    var name: String
    var admin: Bool
}

struct RenameForm: Decodable {
    var name: String
}
