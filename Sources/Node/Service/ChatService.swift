import API
import Foundation
import GRPCCore
import Projections
import Raft
import RateLimit
import Replica

/// The client API. Writes become one command each, proposed on the leader after everything
/// non-deterministic (salt, hash, token, clock) is decided here; reads wait for a ReadIndex
/// barrier so they see every write acknowledged before they began.
struct ChatService: Chorus_V1_Chat.SimpleServiceProtocol {
    let replica: ChatReplica
    let current: CurrentState
    let configuration: NodeConfiguration
    /// Password hashing off the event loops, bounded.
    let hasher: PasswordHasher
    let metrics: NodeMetrics
    /// Per source address: password guesses (logins and account deletions), accounts
    /// created, and requests without a live session.
    let failedLogins: RateLimiter
    let accountCreations: RateLimiter
    let unauthenticated: RateLimiter

    init(replica: ChatReplica, current: CurrentState, configuration: NodeConfiguration, hasher: PasswordHasher, metrics: NodeMetrics) {
        self.replica = replica
        self.current = current
        self.configuration = configuration
        self.hasher = hasher
        self.metrics = metrics
        failedLogins = RateLimiter(perMinute: configuration.failedLoginsPerMinute)
        accountCreations = RateLimiter(perMinute: configuration.accountCreationsPerMinute)
        unauthenticated = RateLimiter(perMinute: configuration.unauthenticatedPerMinute)
    }

    /// The projections of this moment (a snapshot install may replace them).
    var state: ChatState { current.state }

    // MARK: Accounts and sessions

    func checkUsername(request: Chorus_V1_CheckUsernameRequest, context: ServerContext) async throws -> Chorus_V1_CheckUsernameResponse {
        var response = Chorus_V1_CheckUsernameResponse()
        do {
            try Validation.accountName(request.name)
            response.valid = true
            response.available = try !state.userExists(request.name)
        } catch let rejection as Rejection {
            response.valid = false
            response.reason = rejection.message
        }
        return response
    }

    func createAccount(request: Chorus_V1_CreateAccountRequest, context: ServerContext) async throws -> Chorus_V1_CreateAccountResponse {
        try mapRejection { try Validation.accountName(request.name) }
        try validatePassword(request.password)
        try await requireLeader()
        try limit(accountCreations, context, "accounts created")
        let salt = Credentials.newSalt()
        let iterations = configuration.passwordIterations
        let password = request.password
        guard let hash = try await hashing({ Credentials.hashPassword(password, salt: salt, iterations: iterations) }) else {
            throw RPCError(code: .internalError, message: "this node cannot hash passwords with \(iterations) rounds")
        }
        _ = try await propose(request.requestID, .createAccount(.with {
            $0.name = request.name
            $0.salt = Data(salt)
            $0.iterations = iterations
            $0.passwordHash = Data(hash)
        }))
        return .with { $0.name = request.name }
    }

    func login(request: Chorus_V1_LoginRequest, context: ServerContext) async throws -> Chorus_V1_LoginResponse {
        try mapRejection { try Validation.accountName(request.name) }
        try await barrier()
        guard try state.userExists(request.name) else {
            throw RPCError(code: .notFound, message: "there is no account named '\(request.name)'")
        }
        try takeGuess(context)
        let (state, name, password) = (self.state, request.name, request.password)
        guard try await hashing({ try state.checkCredentials(name: name, password: password) }) != nil else {
            throw RPCError(code: .unauthenticated, message: "wrong password for '\(request.name)'")
        }
        failedLogins.giveBack(source(of: context))
        let token = Credentials.newToken()
        let unread = try await propose(request.requestID, .openSession(.with {
            $0.name = request.name
            $0.tokenHash = Data(Credentials.tokenHash(token))
            $0.idleMs = configuration.sessionIdle.milliseconds
            $0.lifetimeMs = configuration.sessionLifetime.milliseconds
        }))
        return .with {
            $0.token = TokenText.encode(token)
            $0.unreadCount = unread
        }
    }

    func logout(request: Chorus_V1_LogoutRequest, context: ServerContext) async throws -> Chorus_V1_LogoutResponse {
        _ = try await proposeAsSession(request.requestID, token: request.token, context) { hash in
            .closeSession(.with { $0.tokenHash = Data(hash) })
        }
        return .init()
    }

    /// A retry whose first attempt deleted the account is answered with that outcome (the
    /// session went with the account): the caller learns the account is gone, not that its
    /// password was wrong.
    func deleteAccount(request: Chorus_V1_DeleteAccountRequest, context: ServerContext) async throws -> Chorus_V1_DeleteAccountResponse {
        guard case let .propose(hash) = try await admitWrite(request.requestID, token: request.token, context) else { return .init() }
        let session = try await authenticate(request.token, context)
        try takeGuess(context)
        let (state, password) = (self.state, request.password)
        guard try await hashing({ try state.checkCredentials(name: session.name, password: password) }) != nil else {
            throw RPCError(code: .unauthenticated, message: "wrong password: deleting an account needs its password")
        }
        failedLogins.giveBack(source(of: context))
        _ = try await propose(request.requestID, .deleteAccount(.with { $0.tokenHash = Data(hash) }))
        return .init()
    }

    func listAccounts(request: Chorus_V1_ListAccountsRequest, context: ServerContext) async throws -> Chorus_V1_ListAccountsResponse {
        _ = try await authenticate(request.token, context)
        let page = try mapRejection {
            try state.accounts(
                matching: request.pattern.isEmpty ? "*" : request.pattern,
                pageSize: request.pageSize == 0 ? 50 : Int(request.pageSize),
                pageToken: request.pageToken.isEmpty ? nil : request.pageToken
            )
        }
        return .with {
            $0.accounts = page.items.map { account in .with { $0.name = account.name; $0.online = account.online } }
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    // MARK: Messages

    func sendMessage(request: Chorus_V1_SendMessageRequest, context: ServerContext) async throws -> Chorus_V1_SendMessageResponse {
        let id = try await proposeAsSession(request.requestID, token: request.token, context) { hash in
            try sendCommand(request, tokenHash: hash)
        }
        return .with { $0.messageID = id }
    }

    /// A send, checked as far as it can be before it is proposed.
    func sendCommand(_ request: Chorus_V1_SendMessageRequest, tokenHash hash: [UInt8]) throws -> Command.OneOf_Kind {
        try mapRejection {
            try Validation.accountName(request.recipient)
            try Validation.messageBody(request.body)
        }
        return .sendMessage(.with {
            $0.tokenHash = Data(hash)
            $0.recipient = request.recipient
            $0.body = request.body
        })
    }

    func readUndelivered(request: Chorus_V1_ReadUndeliveredRequest, context: ServerContext) async throws -> Chorus_V1_ReadUndeliveredResponse {
        let session = try await authenticate(request.token, context)
        let limit = request.limit == 0 ? 10 : Int(request.limit)
        let (messages, unread) = try mapRejection { try state.undeliveredWithCount(userID: session.userID, limit: limit) }
        return .with {
            $0.messages = messages.map(Self.message)
            $0.unreadCount = unread
        }
    }

    func acknowledgeMessages(request: Chorus_V1_AcknowledgeMessagesRequest, context: ServerContext) async throws -> Chorus_V1_AcknowledgeMessagesResponse {
        try mapRejection { try Validation.messageIDs(request.messageIds) }
        let count = try await proposeAsSession(request.requestID, token: request.token, context) { hash in
            .acknowledge(.with {
                $0.tokenHash = Data(hash)
                $0.messageIds = request.messageIds
            })
        }
        return .with { $0.acknowledged = count }
    }

    func history(request: Chorus_V1_HistoryRequest, context: ServerContext) async throws -> Chorus_V1_HistoryResponse {
        let session = try await authenticate(request.token, context)
        try mapRejection { try Validation.accountName(request.otherUser) }
        // A name no account has may be one that was deleted: its conversation stays readable.
        let other: UInt64
        var deleted = false
        if let user = try state.user(named: request.otherUser) {
            other = user.id
        } else if let former = try mapRejection({ try state.formerAccount(named: request.otherUser, conversingWith: session.userID) }) {
            other = former
            deleted = true
        } else {
            throw RPCError(code: .notFound, message: "there is no account named '\(request.otherUser)'")
        }
        let page = try mapRejection {
            try state.conversation(
                between: session.userID, and: other,
                limit: request.pageSize == 0 ? 50 : Int(request.pageSize),
                pageToken: request.pageToken.isEmpty ? nil : request.pageToken,
                newestFirst: !request.oldestFirst
            )
        }
        var response = Self.history(page)
        response.deletedAccount = deleted
        return response
    }

    /// A page of a conversation, direct or a group's, as the API answers it.
    static func history(_ page: Page<MessageRow>) -> Chorus_V1_HistoryResponse {
        .with {
            $0.messages = page.items.map(Self.message)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    func deleteMessages(request: Chorus_V1_DeleteMessagesRequest, context: ServerContext) async throws -> Chorus_V1_DeleteMessagesResponse {
        try mapRejection { try Validation.messageIDs(request.messageIds) }
        if configuration.plantedBugs.skipDeletes { return .with { $0.deleted = UInt64(Set(request.messageIds).count) } }
        let count = try await proposeAsSession(request.requestID, token: request.token, context) { hash in
            var ids = request.messageIds
            if configuration.plantedBugs.deleteExtra, let extra = try? plantedExtraVictim(ids) { ids.append(extra) }
            return .deleteMessages(.with {
                $0.tokenHash = Data(hash)
                $0.messageIds = ids
            })
        }
        return .with { $0.deleted = count }
    }

    /// Cluster version 2 on: the sender replaces a message's body.
    func editMessage(request: Chorus_V1_EditMessageRequest, context: ServerContext) async throws -> Chorus_V1_EditMessageResponse {
        try mapRejection { try Validation.messageBody(request.body) }
        let edited = try await proposeAsSession(request.requestID, token: request.token, context, needing: 2, feature: "editing a message") { hash in
            .editMessage(.with {
                $0.tokenHash = Data(hash)
                $0.messageID = request.messageID
                $0.body = request.body
            })
        }
        return .with { $0.editedUnixMs = Int64(bitPattern: edited) }
    }

    /// `proposeAsSession` for a command of cluster version `needed`: refused early while the
    /// cluster runs an older one, and checked again as it is proposed, on the node that
    /// proposes it (it may have become leader since): only a node that applied the raise puts
    /// such a command in the log, so every one follows the raise there.
    func proposeAsSession(_ requestID: Chorus_V1_RequestID, token: String, _ context: ServerContext, needing needed: UInt32, feature: String,
                          _ kind: ([UInt8]) throws -> Command.OneOf_Kind) async throws -> UInt64 {
        try await requireClusterVersion(needed, feature: feature)
        return try await proposeAsSession(requestID, token: token, context) { hash in
            let running = versions.clusterVersion
            guard running >= needed else { throw Rejection.needsClusterVersion(needed, feature: feature, running: running).rpcError }
            return try kind(hash)
        }
    }

    /// Refuses early what the committed cluster version does not have yet (apply refuses it
    /// too, with the same sentence: that is the rule; this saves the proposal). A leader
    /// whose tables say otherwise may not have applied the version's entry yet: a barrier
    /// settles it. A follower leaves the answer to the leader it names.
    func requireClusterVersion(_ needed: UInt32, feature: String) async throws {
        guard replica.isLeader, versions.clusterVersion < needed else { return }
        try await barrier()
        let running = versions.clusterVersion
        guard running >= needed else { throw Rejection.needsClusterVersion(needed, feature: feature, running: running).rpcError }
    }

    /// The planted `deleteExtra` bug's victim: the oldest other message of the conversation
    /// of `ids`' first message.
    private func plantedExtraVictim(_ ids: [UInt64]) throws -> UInt64? {
        guard let first = ids.first, let row = try state.message(id: first) else { return nil }
        let page = try state.conversation(between: row.senderID, and: row.recipientID, limit: 20, newestFirst: false)
        return page.items.first { !ids.contains($0.id) }?.id
    }

    // MARK: Helpers

    /// Fails on a follower, with the leader's address, before work only the leader could
    /// finish (hashing a new account's password); then a barrier confirms the leadership.
    func requireLeader() async throws {
        guard replica.isLeader else { throw configuration.rpcError(.notLeader(leader: replica.leader)) }
        try await barrier()
    }

    /// Waits for a ReadIndex barrier: then whatever committed before the call began is applied
    /// here. A follower asks its leader for the barrier and serves the read itself; with no
    /// leader known, it fails with UNAVAILABLE.
    func barrier() async throws {
        do {
            try await replica.linearizableRead()
        } catch {
            throw configuration.rpcError(error)
        }
    }

    /// Proposes the command `kind` makes of the caller's token hash, once `admitWrite` lets
    /// the session act; returns its value (the original one for a request applied before).
    func proposeAsSession(_ requestID: Chorus_V1_RequestID, token: String, _ context: ServerContext,
                          _ kind: ([UInt8]) throws -> Command.OneOf_Kind) async throws -> UInt64 {
        switch try await admitWrite(requestID, token: token, context) {
        case let .answered(value): return value
        case let .propose(hash): return try await propose(requestID, try kind(hash))
        }
    }

    /// Proposes `kind` as one command with the caller's request id; returns its value.
    func propose(_ requestID: Chorus_V1_RequestID, _ kind: Command.OneOf_Kind) async throws -> UInt64 {
        try await proposeEntry(requestID, kind).value
    }

    /// `propose`, with the log index of the entry that carried the command.
    func proposeEntry(_ requestID: Chorus_V1_RequestID, _ kind: Command.OneOf_Kind) async throws -> (value: UInt64, index: UInt64) {
        let applied: Applied
        do {
            applied = try await replica.propose(try command(requestID, kind))
        } catch let error as ReplicaError {
            throw configuration.rpcError(error)
        }
        switch applied.outcome {
        case let .success(value): return (value, applied.index)
        case let .failure(rejection): throw rejection.rpcError
        }
    }

    /// `kind` as an encoded command: the request id, the format version and this node's clock.
    func command(_ requestID: Chorus_V1_RequestID, _ kind: Command.OneOf_Kind) throws -> [UInt8] {
        try mapRejection { try Validation.requestID(clientID: requestID.clientID, sequence: requestID.sequence, firstOutstanding: requestID.firstOutstanding) }
        var command = Command()
        command.version = ChatState.commandVersion
        command.clientID = requestID.clientID
        command.sequence = requestID.sequence
        command.firstOutstanding = requestID.firstOutstanding
        command.timestampMs = replica.machine.leaderClock.stamp()
        command.kind = kind
        return try command.serializedBytes()
    }

    /// Runs password hashing on the hasher's threads; a busy hasher is RESOURCE_EXHAUSTED.
    func hashing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await hasher.run(body)
        } catch let busy as PasswordHasher.Busy {
            throw RPCError(code: .resourceExhausted, message: "node \(configuration.id) is checking \(busy.maxWaiting) passwords already; retry in a second",
                           metadata: Self.retryAfter(.seconds(1)))
        }
    }

    /// Takes a token from `limiter` for the caller's address, or fails with when to retry.
    func limit(_ limiter: RateLimiter, _ context: ServerContext, _ what: String) throws {
        if let wait = limiter.take(source(of: context)) { throw rateLimited(limiter, wait, what) }
    }

    /// Fails, as `limit` would, when the caller's address has no token left; takes none.
    func check(_ limiter: RateLimiter, _ context: ServerContext, _ what: String) throws {
        if let wait = limiter.wouldAllow(source(of: context)) { throw rateLimited(limiter, wait, what) }
    }

    /// Takes a password guess from the caller's address before the password is checked, or
    /// fails: concurrent guesses cannot pass a check that only failures take from. A right
    /// password gives the guess back.
    func takeGuess(_ context: ServerContext) throws {
        try limit(failedLogins, context, "failed password checks")
    }

    /// The address the caller's limits apply to: the browser's, for a call a web gateway of
    /// this cluster makes on its behalf (`ForwardedClient`); else the caller's own.
    func source(of context: ServerContext) -> String {
        if let forwarded = ForwardedClient.address { return forwarded }
        return RateLimiter.source(of: context.remotePeer)
    }

    private func rateLimited(_ limiter: RateLimiter, _ wait: Duration, _ what: String) -> RPCError {
        metrics.rateLimited.increment()
        let seconds = max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0))
        return RPCError(code: .resourceExhausted, message: "too many \(what) from this address (at most \(limiter.perMinute) a minute); retry in \(seconds) s",
                        metadata: Self.retryAfter(wait))
    }

    static func retryAfter(_ wait: Duration) -> Metadata {
        var metadata = Metadata()
        metadata.addString("\(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)", forKey: MetadataKeys.retryAfterMs)
        return metadata
    }

    func validatePassword(_ password: String) throws {
        guard !password.isEmpty else { throw RPCError(code: .invalidArgument, message: "the password is empty") }
        guard password.utf8.count <= 1024 else { throw RPCError(code: .invalidArgument, message: "the password is longer than 1024 bytes") }
    }

    func mapRejection<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let rejection as Rejection {
            throw rejection.rpcError
        }
    }

    static func message(_ row: MessageRow) -> Chorus_V1_ChatMessage {
        .with {
            $0.id = row.id
            $0.sender = row.sender
            $0.recipient = row.recipient
            $0.body = row.body
            $0.sentUnixMs = row.sentMs
            $0.delivered = row.delivered
            $0.editedUnixMs = row.editedMs
            $0.group = row.group
            if row.hasChange { $0.change = Self.change(row.change) }
        }
    }

    static func change(_ change: GroupChange) -> Chorus_V1_GroupChange {
        .with {
            $0.kind = Chorus_V1_GroupChange.Kind(rawValue: change.kind.rawValue) ?? .unspecified
            $0.members = change.members
            $0.previousName = change.previousName
            $0.accountDeleted = change.accountDeleted
            $0.newAdmins = change.newAdmins
        }
    }
}
