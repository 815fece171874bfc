import Client
import Foundation
import Hummingbird

/// The chat itself: the directory, conversations, sending, reading N waiting messages,
/// deleting messages, and the cluster's state for the status line.
struct ChatRoutes: Sendable {
    let services: GatewayServices

    func add(to api: RouterGroup<GatewayContext>) {
        api.get("accounts", use: accounts)
        api.get("conversations/:name", use: history)
        api.post("conversations/:name", use: send)
        api.post("inbox/read", use: readWaiting)
        api.post("messages/delete", use: delete)
        api.post("messages/edit", use: edit)
        api.post("messages/shown", use: shown)
        api.get("cluster", use: cluster)
    }

    /// A page of accounts matching a wildcard pattern (`*`, `?`), with who is online.
    @Sendable func accounts(_ request: Request, _ context: GatewayContext) async throws -> AccountsPage {
        let session = try SessionCookie.require(request)
        let query = request.uri.queryParameters
        let pattern = query["pattern"].map(String.init).flatMap { $0.isEmpty ? nil : $0 } ?? "*"
        let page = try await GatewayError.mapping {
            try await services.client.listAccounts(token: session.token, pattern: pattern, pageSize: services.configuration.accountPageSize,
                                                   pageToken: query["page"].map(String.init))
        }
        return AccountsPage(accounts: page.accounts.map { AccountJSON(name: $0.name, online: $0.online) }, next: page.nextPageToken)
    }

    /// The conversation with one account, newest first, a page at a time.
    @Sendable func history(_ request: Request, _ context: GatewayContext) async throws -> MessagesPage {
        let session = try SessionCookie.require(request)
        let other = try context.parameters.decoded("name")
        let page = try await GatewayError.mapping {
            try await services.client.history(token: session.token, with: other, pageSize: services.configuration.historyPageSize,
                                              pageToken: request.uri.queryParameters["page"].map(String.init))
        }
        return MessagesPage(messages: page.messages.map(MessageJSON.init), next: page.nextPageToken, deletedAccount: page.deletedAccount ? true : nil)
    }

    /// Sends one message under the page's key for it: the page sends again with the same key
    /// until it learns the outcome (a 504 says it is unknown), and the cluster stores it once
    /// whatever the number of tries, answering each with the id it was stored under.
    @Sendable func send(_ request: Request, _ context: GatewayContext) async throws -> MessageJSON {
        let session = try SessionCookie.require(request)
        let other = try context.parameters.decoded("name")
        let form = try await request.decode(as: SendForm.self, context: context)
        let requestID = try form.key?.requestID(token: session.token)
        let id = try await GatewayError.mapping {
            if let requestID { return try await services.client.send(token: session.token, to: other, body: form.body, requestID: requestID) }
            return try await services.client.send(token: session.token, to: other, body: form.body)
        }
        return MessageJSON(id: id, from: session.user, to: other, body: form.body, sentUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// The oldest `limit` messages that wait for this user. They stay waiting until the page
    /// has shown them and says so (`shown`): an answer lost on its way loses nothing.
    @Sendable func readWaiting(_ request: Request, _ context: GatewayContext) async throws -> InboxRead {
        let session = try SessionCookie.require(request)
        let form = try await request.decode(as: ReadForm.self, context: context)
        guard (1...200).contains(form.limit) else { throw HTTPError(.badRequest, message: "Read between 1 and 200 messages at a time.") }
        let (messages, unread) = try await GatewayError.mapping {
            try await services.client.readUndelivered(token: session.token, limit: form.limit, acknowledge: false)
        }
        return InboxRead(messages: messages.map(MessageJSON.init), unread: unread)
    }

    /// Messages the page has put on the screen: now, and only now, delivered.
    @Sendable func shown(_ request: Request, _ context: GatewayContext) async throws -> Deleted {
        let session = try SessionCookie.require(request)
        let ids = try await request.decode(as: DeleteForm.self, context: context).messageIDs()
        guard !ids.isEmpty else { return Deleted(deleted: 0) }
        return Deleted(deleted: try await GatewayError.mapping { try await services.client.acknowledge(token: session.token, ids: ids) })
    }

    @Sendable func delete(_ request: Request, _ context: GatewayContext) async throws -> Deleted {
        let session = try SessionCookie.require(request)
        let ids = try await request.decode(as: DeleteForm.self, context: context).messageIDs()
        guard !ids.isEmpty else { throw HTTPError(.badRequest, message: "Select at least one message to delete.") }
        return Deleted(deleted: try await GatewayError.mapping { try await services.client.deleteMessages(token: session.token, ids: ids) })
    }

    /// A new body for a message the caller sent (cluster version 2 on; before, 412 with the
    /// cluster's sentence).
    @Sendable func edit(_ request: Request, _ context: GatewayContext) async throws -> Edited {
        let session = try SessionCookie.require(request)
        let form = try await request.decode(as: EditForm.self, context: context)
        let id = try form.messageID()
        return Edited(editedUnixMs: try await GatewayError.mapping { try await services.client.editMessage(token: session.token, id: id, body: form.body) })
    }

    /// Every node's answer to a status call, and the leader most of them name: for a session
    /// the cluster knows (a well-formed cookie is not enough), a few times a minute.
    @Sendable func cluster(_ request: Request, _ context: GatewayContext) async throws -> ClusterJSON {
        let session = try SessionCookie.require(request)
        if let wait = services.clusterChecks.take(context.remoteAddress) { throw GatewayError.tooMany("cluster status checks", retryAfter: wait) }
        _ = try await GatewayError.mapping { try await services.client.listAccounts(token: session.token, pattern: session.user, pageSize: 1) }
        let answers = await services.client.status()
        let nodes = answers.map { answer in
            ClusterJSON.Node(endpoint: answer.endpoint, reachable: answer.status != nil, id: answer.status?.nodeID,
                             role: answer.status?.role, term: answer.status?.term, commitIndex: answer.status?.commitIndex)
        }
        let named = answers.compactMap { $0.status?.leaderAddress }.filter { !$0.isEmpty }
        let leader = Dictionary(grouping: named, by: { $0 }).max { $0.value.count < $1.value.count }?.key
        return ClusterJSON(nodes: nodes, leader: leader)
    }
}
