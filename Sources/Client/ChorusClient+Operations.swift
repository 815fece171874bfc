import API
import GRPCCore

/// Every chat operation, each one call on the leader with retries.
extension ChorusClient {
    /// Whether `name` is well formed and free (nil reason when it is).
    public func checkUsername(_ name: String) async throws -> (available: Bool, reason: String?) {
        let response = try await withLeader { try await $0.checkUsername(.with { $0.name = name }, metadata: ForwardedFor.metadata, options: Self.callOptions) }
        if !response.valid { return (false, response.reason) }
        return (response.available, response.available ? nil : "the name '\(name)' is taken")
    }

    public func createAccount(name: String, password: String) async throws {
        _ = try await write { id, stub in
            try await stub.createAccount(.with { $0.requestID = id; $0.name = name; $0.password = password }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    public func login(name: String, password: String) async throws -> Session {
        let response = try await write { id, stub in
            try await stub.login(.with { $0.requestID = id; $0.name = name; $0.password = password }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
        return Session(name: name, token: response.token, unreadCount: response.unreadCount)
    }

    public func logout(token: String) async throws {
        _ = try await write { id, stub in
            try await stub.logout(.with { $0.requestID = id; $0.token = token }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    public func listAccounts(token: String, pattern: String = "*", pageSize: Int = 50, pageToken: String? = nil) async throws -> AccountPage {
        let response = try await read(.listAccounts(.with {
            $0.token = token
            $0.pattern = pattern
            $0.pageSize = UInt32(clamping: pageSize)
            $0.pageToken = pageToken ?? ""
        })) { reply -> Chorus_V1_ListAccountsResponse? in
            guard case let .listAccounts(response)? = reply.response else { return nil }
            return response
        }
        return AccountPage(accounts: response.accounts.map { ($0.name, $0.online) },
                           nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken)
    }

    /// Sends a message; returns its id. Retried safely: it is stored once.
    public func send(token: String, to recipient: String, body: String) async throws -> UInt64 {
        try await write(node: { id, node in
            try await sendStreams[node].call(.with { $0.requestID = id; $0.token = token; $0.recipient = recipient; $0.body = body })
        }).messageID
    }

    /// Sends a message under a request id the caller keeps: calling again with the same id
    /// after an unknown outcome stores it once, and answers with the id it was stored under.
    public func send(token: String, to recipient: String, body: String, requestID: ChorusRequestID) async throws -> UInt64 {
        let request = Chorus_V1_SendMessageRequest.with { $0.requestID = requestID.proto; $0.token = token; $0.recipient = recipient; $0.body = body }
        return try await withLeader(write: true, node: { node in
            if ForwardedFor.address != nil {
                return try await stubs[node].sendMessage(request, metadata: ForwardedFor.metadata, options: Self.callOptions).messageID
            }
            return try await sendStreams[node].call(request).messageID
        })
    }

    /// The oldest `limit` undelivered messages. With `acknowledge` (the default) they are
    /// marked delivered once received here; if the acknowledgement is lost they are simply
    /// delivered again next time, never lost.
    public func readUndelivered(token: String, limit: Int = 10, acknowledge: Bool = true) async throws -> (messages: [ChatMessage], unreadCount: UInt64) {
        let response = try await read(.undelivered(.with { $0.token = token; $0.limit = UInt32(clamping: limit) })) { reply -> Chorus_V1_ReadUndeliveredResponse? in
            guard case let .undelivered(response)? = reply.response else { return nil }
            return response
        }
        let messages = response.messages.map(ChatMessage.init)
        if acknowledge && !messages.isEmpty {
            _ = try await self.acknowledge(token: token, ids: messages.map(\.id))
        }
        return (messages, Self.waitingAfter(response.unreadCount, taking: acknowledge ? messages.count : 0))
    }

    /// What still waits once `taken` of `unread` are acknowledged. A node counts in the
    /// same transaction as it reads, but the answer is a stranger's bytes: never below zero.
    static func waitingAfter(_ unread: UInt64, taking taken: Int) -> UInt64 {
        let (left, overflow) = unread.subtractingReportingOverflow(UInt64(max(0, taken)))
        return overflow ? 0 : left
    }

    @discardableResult
    public func acknowledge(token: String, ids: [UInt64]) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.acknowledgeMessages(.with { $0.requestID = id; $0.token = token; $0.messageIds = ids }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.acknowledged
    }

    public func history(token: String, with other: String, pageSize: Int = 20, pageToken: String? = nil, oldestFirst: Bool = false) async throws -> HistoryPage {
        let response = try await read(.history(.with {
            $0.token = token
            $0.otherUser = other
            $0.pageSize = UInt32(clamping: pageSize)
            $0.pageToken = pageToken ?? ""
            $0.oldestFirst = oldestFirst
        })) { reply -> Chorus_V1_HistoryResponse? in
            guard case let .history(response)? = reply.response else { return nil }
            return response
        }
        return HistoryPage(messages: response.messages.map(ChatMessage.init),
                           nextPageToken: response.nextPageToken.isEmpty ? nil : response.nextPageToken, deletedAccount: response.deletedAccount)
    }

    @discardableResult
    public func deleteMessages(token: String, ids: [UInt64]) async throws -> UInt64 {
        try await write { id, stub in
            try await stub.deleteMessages(.with { $0.requestID = id; $0.token = token; $0.messageIds = ids }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.deleted
    }

    /// Replaces the body of a message the caller sent; returns when it was edited (ms since
    /// 1970). Needs cluster version 2: before it, FAILED_PRECONDITION says so.
    @discardableResult
    public func editMessage(token: String, id: UInt64, body: String) async throws -> Int64 {
        try await write { requestID, stub in
            try await stub.editMessage(.with { $0.requestID = requestID; $0.token = token; $0.messageID = id; $0.body = body }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }.editedUnixMs
    }

    public func deleteAccount(token: String, password: String) async throws {
        _ = try await write { id, stub in
            try await stub.deleteAccount(.with { $0.requestID = id; $0.token = token; $0.password = password }, metadata: ForwardedFor.metadata, options: Self.callOptions)
        }
    }

    /// Every endpoint's own view of the cluster (nil for a node that did not answer).
    public func status() async -> [(endpoint: String, status: NodeStatus?)] {
        var result: [(String, NodeStatus?)] = []
        for (index, stub) in stubs.enumerated() {
            let response = try? await stub.clusterStatus(.init(), options: CallOptions.defaults.withTimeout(.seconds(1)))
            result.append((endpoints[index], response.map { s in
                var status = NodeStatus(endpoint: endpoints[index], nodeID: s.nodeID, role: s.role, term: s.term, leaderID: s.leaderID,
                                        leaderAddress: s.leaderAddress, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex,
                                        lastIndex: s.lastIndex, members: s.members.map { ($0.id, $0.address, $0.voter, $0.matchIndex) },
                                        clusterID: s.clusterID, refusedPeerMessages: s.refusedPeerMessages, ready: s.ready, notReady: s.notReady)
                // A release before cluster versions says nothing of them: it runs version 1.
                status.clusterVersion = max(1, s.clusterVersion)
                status.buildMaxClusterVersion = max(1, s.buildMaxClusterVersion)
                status.release = s.release
                for member in s.members where member.maxClusterVersion > 0 {
                    status.memberBuilds[member.id] = (member.maxClusterVersion, member.release)
                }
                return status
            }))
        }
        return result
    }

    /// A read over the node's read stream (one of many in flight on it), with the leader
    /// discovery and retries of any call; `response` takes the reply's answer of the kind
    /// asked for.
    func read<Response: Sendable>(_ request: Chorus_V1_ReadRequest.OneOf_Read,
                                  _ response: @Sendable (Chorus_V1_ReadReply) -> Response?) async throws -> Response {
        try await withLeader(node: { node in
            let reply = ForwardedFor.address != nil ? try await unaryRead(request, on: node) : try await readStreams[node].call(.with {
                $0.callID = readCalls.add(1, ordering: .relaxed).newValue
                $0.read = request
            })
            guard let answer = response(reply) else {
                throw RPCError(code: .internalError, message: "node \(endpoints[node]) answered a read with another kind of response")
            }
            return answer
        })
    }

    /// A read as its own unary call, which carries the forwarded address (`ForwardedFor`): a
    /// gateway's reads then count against each browser's limits, not the gateway's.
    func unaryRead(_ request: Chorus_V1_ReadRequest.OneOf_Read, on node: Int) async throws -> Chorus_V1_ReadReply {
        let stub = stubs[node]
        let (metadata, options) = (ForwardedFor.metadata, Self.callOptions)
        var reply = Chorus_V1_ReadReply()
        switch request {
        case let .history(r): reply.history = try await stub.history(r, metadata: metadata, options: options)
        case let .undelivered(r): reply.undelivered = try await stub.readUndelivered(r, metadata: metadata, options: options)
        case let .listAccounts(r): reply.listAccounts = try await stub.listAccounts(r, metadata: metadata, options: options)
        }
        return reply
    }
}
