import API
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import Testing
@testable import Client

/// The client library against a node that answers anything a valid protobuf can carry: every
/// number from 0 to its maximum, counts that contradict each other, empty and odd strings,
/// statuses with made-up metadata. Whatever comes back, every operation returns or throws a
/// `ChorusError`; none traps (a trap would end this test process).
@Suite(.serialized) struct ClientAnswersPropertyTests {
    /// Random answers from one seed, shared by the handlers of one server.
    final class Answers: Sendable {
        private let generator: Mutex<SplitMix>

        init(seed: UInt64) { generator = Mutex(SplitMix(state: seed)) }

        func next() -> UInt64 { generator.withLock { $0.next() } }
        func below(_ n: UInt64) -> UInt64 { next() % n }
        func chance(_ percent: UInt64) -> Bool { below(100) < percent }

        /// A number that is often at an edge.
        func number() -> UInt64 {
            switch below(6) {
            case 0: 0
            case 1: .max
            case 2: .max - below(3)
            case 3: 1 << below(64)
            default: below(1_000)
            }
        }

        func int64() -> Int64 { Int64(bitPattern: number()) }

        func string() -> String {
            switch below(5) {
            case 0: ""
            case 1: String(repeating: "x", count: Int(below(5_000)))
            case 2: "\u{0}\u{FFFD}é🙂=:;/\\"
            case 3: "\(number())"
            default: "name\(below(100))"
            }
        }

        func message() -> Chorus_V1_ChatMessage {
            .with {
                $0.id = number()
                $0.sender = string()
                $0.recipient = string()
                $0.body = string()
                $0.sentUnixMs = int64()
                $0.delivered = chance(50)
                if chance(30) { $0.group = string() }
                if chance(20) {
                    $0.change = .with {
                        $0.kind = Chorus_V1_GroupChange.Kind(rawValue: Int(below(12))) ?? .unspecified
                        $0.members = (0..<below(5)).map { _ in string() }
                        $0.previousName = string()
                        $0.newAdmins = (0..<below(3)).map { _ in string() }
                    }
                }
            }
        }

        /// A failure a node (or something posing as one) might send, or nil for an answer.
        func failure() -> RPCError? {
            guard chance(35) else { return nil }
            let codes: [RPCError.Code] = [.unavailable, .resourceExhausted, .deadlineExceeded, .internalError, .unauthenticated, .notFound,
                                          .invalidArgument, .failedPrecondition, .permissionDenied, .alreadyExists, .unknown, .dataLoss]
            var metadata = Metadata()
            if chance(50) {
                let retry = ["", "-1", "0", "1", "15", "abc", "\(Int64.max)", "99999999999999999999999", "\(UInt64.max)"]
                metadata.addString(retry[Int(below(UInt64(retry.count)))], forKey: MetadataKeys.retryAfterMs)
            }
            if chance(50) {
                let hints = ["", "=", "1=", "=127.0.0.1:1", "7=127.0.0.1:9", "x", "1=\(string())"]
                metadata.addString(hints[Int(below(UInt64(hints.count)))], forKey: MetadataKeys.leader)
            }
            if chance(30) { metadata.addString("1", forKey: MetadataKeys.notProposed) }
            if chance(20) { metadata.addString(string(), forKey: MetadataKeys.resumeAfter) }
            return RPCError(code: codes[Int(below(UInt64(codes.count)))], message: string(), metadata: metadata)
        }

        func answer<T>(_ make: () -> T) throws -> T {
            if let failure = failure() { throw failure }
            return make()
        }
    }

    /// A node that answers every call of the chat API at random (keys of multiplexed replies
    /// are kept, so that each reaches its caller; everything else is random).
    struct RandomNode: Chorus_V1_Chat.SimpleServiceProtocol {
        let answers: Answers

        func checkUsername(request: Chorus_V1_CheckUsernameRequest, context: ServerContext) async throws -> Chorus_V1_CheckUsernameResponse {
            try answers.answer { .with { $0.valid = answers.chance(50); $0.available = answers.chance(50); $0.reason = answers.string() } }
        }
        func createAccount(request: Chorus_V1_CreateAccountRequest, context: ServerContext) async throws -> Chorus_V1_CreateAccountResponse {
            try answers.answer { .with { $0.name = answers.string() } }
        }
        func login(request: Chorus_V1_LoginRequest, context: ServerContext) async throws -> Chorus_V1_LoginResponse {
            try answers.answer { .with { $0.token = answers.string(); $0.unreadCount = answers.number() } }
        }
        func logout(request: Chorus_V1_LogoutRequest, context: ServerContext) async throws -> Chorus_V1_LogoutResponse {
            try answers.answer { .init() }
        }
        func listAccounts(request: Chorus_V1_ListAccountsRequest, context: ServerContext) async throws -> Chorus_V1_ListAccountsResponse {
            try answers.answer { listAccounts() }
        }
        func listAccounts() -> Chorus_V1_ListAccountsResponse {
            .with {
                $0.accounts = (0..<answers.below(20)).map { _ in .with { $0.name = answers.string(); $0.online = answers.chance(50) } }
                $0.nextPageToken = answers.string()
            }
        }
        func sendMessage(request: Chorus_V1_SendMessageRequest, context: ServerContext) async throws -> Chorus_V1_SendMessageResponse {
            try answers.answer { .with { $0.messageID = answers.number() } }
        }
        func sendStream(request: RPCAsyncSequence<Chorus_V1_SendMessageRequest, any Error>, response: RPCWriter<Chorus_V1_SendReply>, context: ServerContext) async throws {
            for try await send in request {
                if answers.chance(5) { throw RPCError(code: .unavailable, message: "the stream broke") }
                try await response.write(.with {
                    $0.requestID = send.requestID
                    if let failure = answers.failure() { $0.fail(with: failure) } else { $0.messageID = answers.number() }
                })
            }
        }
        func readUndelivered(request: Chorus_V1_ReadUndeliveredRequest, context: ServerContext) async throws -> Chorus_V1_ReadUndeliveredResponse {
            try answers.answer { undelivered() }
        }
        func undelivered() -> Chorus_V1_ReadUndeliveredResponse {
            .with {
                $0.messages = (0..<answers.below(30)).map { _ in answers.message() }
                $0.unreadCount = answers.chance(50) ? answers.below(5) : answers.number()
            }
        }
        func acknowledgeMessages(request: Chorus_V1_AcknowledgeMessagesRequest, context: ServerContext) async throws -> Chorus_V1_AcknowledgeMessagesResponse {
            try answers.answer { .with { $0.acknowledged = answers.number() } }
        }
        func history(request: Chorus_V1_HistoryRequest, context: ServerContext) async throws -> Chorus_V1_HistoryResponse {
            try answers.answer { history() }
        }
        func history() -> Chorus_V1_HistoryResponse {
            .with {
                $0.messages = (0..<answers.below(30)).map { _ in answers.message() }
                $0.nextPageToken = answers.string()
            }
        }
        func readStream(request: RPCAsyncSequence<Chorus_V1_ReadRequest, any Error>, response: RPCWriter<Chorus_V1_ReadReply>, context: ServerContext) async throws {
            for try await read in request {
                try await response.write(.with { reply in
                    reply.callID = read.callID
                    if let failure = answers.failure() { return reply.fail(with: failure) }
                    // Sometimes an answer of another kind than was asked.
                    switch answers.chance(10) ? answers.below(3) : nil {
                    case 0?: reply.history = history()
                    case 1?: reply.undelivered = undelivered()
                    case 2?: reply.listAccounts = listAccounts()
                    default:
                        switch read.read {
                        case .history?: reply.history = history()
                        case .undelivered?: reply.undelivered = undelivered()
                        case .listAccounts?: reply.listAccounts = listAccounts()
                        case nil: break
                        }
                    }
                })
            }
        }
        func deleteMessages(request: Chorus_V1_DeleteMessagesRequest, context: ServerContext) async throws -> Chorus_V1_DeleteMessagesResponse {
            try answers.answer { .with { $0.deleted = answers.number() } }
        }
        func editMessage(request: Chorus_V1_EditMessageRequest, context: ServerContext) async throws -> Chorus_V1_EditMessageResponse {
            try answers.answer { .with { $0.editedUnixMs = Int64(truncatingIfNeeded: answers.number()) } }
        }
        func deleteAccount(request: Chorus_V1_DeleteAccountRequest, context: ServerContext) async throws -> Chorus_V1_DeleteAccountResponse {
            try answers.answer { .init() }
        }
        func createGroup(request: Chorus_V1_CreateGroupRequest, context: ServerContext) async throws -> Chorus_V1_CreateGroupResponse {
            try answers.answer { .with { $0.groupID = answers.number() } }
        }
        func addGroupMembers(request: Chorus_V1_ChangeGroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_ChangeGroupMembersResponse {
            try answers.answer { .with { $0.changed = answers.number() } }
        }
        func removeGroupMembers(request: Chorus_V1_ChangeGroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_ChangeGroupMembersResponse {
            try answers.answer { .with { $0.changed = answers.number() } }
        }
        func leaveGroup(request: Chorus_V1_LeaveGroupRequest, context: ServerContext) async throws -> Chorus_V1_LeaveGroupResponse {
            try answers.answer { .init() }
        }
        func renameGroup(request: Chorus_V1_RenameGroupRequest, context: ServerContext) async throws -> Chorus_V1_RenameGroupResponse {
            try answers.answer { .init() }
        }
        func setGroupAdmin(request: Chorus_V1_SetGroupAdminRequest, context: ServerContext) async throws -> Chorus_V1_SetGroupAdminResponse {
            try answers.answer { .init() }
        }
        func sendGroupMessage(request: Chorus_V1_SendGroupMessageRequest, context: ServerContext) async throws -> Chorus_V1_SendMessageResponse {
            try answers.answer { .with { $0.messageID = answers.number() } }
        }
        func listGroups(request: Chorus_V1_ListGroupsRequest, context: ServerContext) async throws -> Chorus_V1_ListGroupsResponse {
            try answers.answer {
                .with {
                    $0.groups = (0..<answers.below(20)).map { _ in
                        .with { $0.name = answers.string(); $0.id = answers.number(); $0.memberCount = UInt32(truncatingIfNeeded: answers.number()); $0.unreadCount = answers.number() }
                    }
                }
            }
        }
        func groupMembers(request: Chorus_V1_GroupMembersRequest, context: ServerContext) async throws -> Chorus_V1_GroupMembersResponse {
            try answers.answer {
                .with {
                    $0.name = answers.string()
                    $0.members = (0..<answers.below(20)).map { _ in .with { $0.name = answers.string(); $0.admin = answers.chance(50); $0.online = answers.chance(50) } }
                }
            }
        }
        func groupHistory(request: Chorus_V1_GroupHistoryRequest, context: ServerContext) async throws -> Chorus_V1_HistoryResponse {
            try answers.answer { history() }
        }
        func subscribe(request: Chorus_V1_SubscribeRequest, response: RPCWriter<Chorus_V1_Event>, context: ServerContext) async throws {
            for _ in 0..<answers.below(40) {
                try await response.write(.with { event in
                    event.id = answers.number()
                    switch answers.below(8) {
                    case 0: event.attached = .with { $0.unreadCount = answers.number(); $0.queuedThrough = answers.number() }
                    case 1: event.messageReceived = answers.message()
                    case 2: event.messagesDeleted = .with { $0.ids = (0..<answers.below(10)).map { _ in answers.number() } }
                    case 3: event.accountCreated = answers.string()
                    case 4: event.accountDeleted = answers.string()
                    case 5: event.presence = .with { $0.name = answers.string(); $0.online = answers.chance(50) }
                    case 6: event.groupChanged = answers.message()
                    default: break
                    }
                })
            }
            if let failure = answers.failure() { throw failure }
        }
        func clusterStatus(request: Chorus_V1_ClusterStatusRequest, context: ServerContext) async throws -> Chorus_V1_ClusterStatusResponse {
            try answers.answer {
                .with {
                    $0.nodeID = answers.number()
                    $0.role = answers.string()
                    $0.term = answers.number()
                    $0.leaderID = answers.number()
                    $0.leaderAddress = answers.string()
                    $0.commitIndex = answers.number()
                    $0.appliedIndex = answers.number()
                    $0.lastIndex = answers.number()
                    $0.members = (0..<answers.below(8)).map { _ in .with { $0.id = answers.number(); $0.address = answers.string(); $0.voter = answers.chance(50); $0.matchIndex = answers.number() } }
                }
            }
        }
    }

    /// Every operation of the library, `rounds` times, against a random node.
    @Test(arguments: [UInt64(1), 2, 3])
    func everyOperationReturnsOrThrowsAChorusErrorWhateverTheAnswer(seed: UInt64) async throws {
        let answers = Answers(seed: seed)
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: [RandomNode(answers: answers)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try? await server.serve() }
            guard let address = try await server.listeningAddress?.ipv4 else {
                Issue.record("the random node did not listen")
                return
            }
            // Two endpoints, both the random node: hints and round-robin move between them.
            let endpoint = "\(address.host):\(address.port)"
            try await withChorusClient(endpoints: [endpoint, endpoint], deadline: .milliseconds(600)) { client in
                for _ in 0..<25 {
                    try await Self.outcome { _ = try await client.checkUsername("alice") }
                    try await Self.outcome { try await client.createAccount(name: "alice", password: "pw") }
                    try await Self.outcome { _ = try await client.login(name: "alice", password: "pw") }
                    try await Self.outcome { try await client.logout(token: "t") }
                    try await Self.outcome { _ = try await client.listAccounts(token: "t") }
                    try await Self.outcome { _ = try await client.send(token: "t", to: "bob", body: "hi") }
                    try await Self.outcome {
                        let (messages, unread) = try await client.readUndelivered(token: "t", limit: 10, acknowledge: answers.chance(50))
                        _ = (messages, unread)
                    }
                    try await Self.outcome { _ = try await client.acknowledge(token: "t", ids: [1, 2]) }
                    try await Self.outcome { _ = try await client.history(token: "t", with: "bob") }
                    try await Self.outcome { _ = try await client.deleteMessages(token: "t", ids: [1]) }
                    try await Self.outcome { try await client.deleteAccount(token: "t", password: "pw") }
                    try await Self.outcome { _ = try await client.createGroup(token: "t", name: "team", members: ["bob"]) }
                    try await Self.outcome { _ = try await client.addGroupMembers(token: "t", group: "team", members: ["carol"]) }
                    try await Self.outcome { _ = try await client.removeGroupMembers(token: "t", group: "team", members: ["carol"]) }
                    try await Self.outcome { try await client.leaveGroup(token: "t", group: "team") }
                    try await Self.outcome { try await client.renameGroup(token: "t", group: "team", to: "crew") }
                    try await Self.outcome { try await client.setGroupAdmin(token: "t", group: "team", member: "bob", admin: true) }
                    try await Self.outcome { _ = try await client.sendToGroup(token: "t", group: "team", body: "hi") }
                    try await Self.outcome { _ = try await client.groups(token: "t") }
                    try await Self.outcome { _ = try await client.groupMembers(token: "t", group: "team") }
                    try await Self.outcome { _ = try await client.groupHistory(token: "t", group: "team") }
                    _ = await client.status()
                    try await Self.outcome {
                        var taken = 0
                        for try await _ in client.subscribe(token: "t") {
                            taken += 1
                            if taken == 50 { break }
                        }
                    }
                }
            }
            server.beginGracefulShutdown()
        }
    }

    /// Runs one operation: it may succeed or fail with a `ChorusError`, nothing else.
    static func outcome(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch is ChorusError {
        } catch {
            Issue.record("not a ChorusError: \(type(of: error)) \(error)")
        }
    }
}
