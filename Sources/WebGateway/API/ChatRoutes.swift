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
        return MessagesPage(messages: page.messages.map(MessageJSON.init), next: page.nextPageToken)
    }

    /// Sends one message. The client library gives it one request id for all its retries, so
    /// a failover while it is in flight stores it once.
    @Sendable func send(_ request: Request, _ context: GatewayContext) async throws -> MessageJSON {
        let session = try SessionCookie.require(request)
        let other = try context.parameters.decoded("name")
        let form = try await request.decode(as: SendForm.self, context: context)
        let id = try await GatewayError.mapping { try await services.client.send(token: session.token, to: other, body: form.body) }
        return MessageJSON(id: id, from: session.user, to: other, body: form.body, sentUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// The oldest `limit` messages that waited for this user, now marked delivered.
    @Sendable func readWaiting(_ request: Request, _ context: GatewayContext) async throws -> InboxRead {
        let session = try SessionCookie.require(request)
        let form = try await request.decode(as: ReadForm.self, context: context)
        guard (1...200).contains(form.limit) else { throw HTTPError(.badRequest, message: "Read between 1 and 200 messages at a time.") }
        let (messages, unread) = try await GatewayError.mapping { try await services.client.readUndelivered(token: session.token, limit: form.limit) }
        return InboxRead(messages: messages.map(MessageJSON.init), unread: unread)
    }

    @Sendable func delete(_ request: Request, _ context: GatewayContext) async throws -> Deleted {
        let session = try SessionCookie.require(request)
        let ids = try await request.decode(as: DeleteForm.self, context: context).messageIDs()
        guard !ids.isEmpty else { throw HTTPError(.badRequest, message: "Select at least one message to delete.") }
        return Deleted(deleted: try await GatewayError.mapping { try await services.client.deleteMessages(token: session.token, ids: ids) })
    }

    /// Every node's answer to a status call, and the leader most of them name.
    @Sendable func cluster(_ request: Request, _ context: GatewayContext) async throws -> ClusterJSON {
        _ = try SessionCookie.require(request)
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
