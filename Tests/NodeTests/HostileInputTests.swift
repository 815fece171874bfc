import API
import Client
import Foundation
import GRPCCore
import LogStore
import Projections
import SwiftProtobuf
import Testing

/// What an attacker on the same network, or a buggy peer or client, can send to a running
/// cluster: forged Raft traffic from a plain gRPC client, and thousands of random and mutated
/// requests. Every node must stay alive, refuse what it cannot accept, and keep serving.
extension EdgeTests {
    @Test func forgedPeerMessagesAreRefusedAndEveryNodeKeepsServing() async throws {
        // Insecure, so that a plain client reaches the peer API: the checks behind
        // authentication, which also guard against a buggy peer with a valid certificate.
        let cluster = try TestCluster(size: 5, tls: false)
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(15)) { client in
            let alice = try await client.newUser("alice", password: "pw")
            _ = try await client.newUser("bob", password: "pw")
            _ = try await client.send(token: alice, to: "bob", body: "before")
            try await cluster.waitForConvergence(client)
            // The cluster id is no secret: any client reads it from ClusterStatus.
            let clusterID = try #require(await client.status().compactMap(\.status).first?.clusterID)
            let termsBefore = await client.status().compactMap(\.status).map(\.term)

            var sentTo: [Int: Int] = [:]
            for id in cluster.ids {
                let me = UInt64(id)
                let peer = UInt64(id % cluster.size + 1)
                let forged = Self.forgedMessages(from: peer, to: me)
                try await RawChat.withStub(cluster.address(id), security: cluster.security) { raw in
                    _ = try await Chorus_V1_Peer.Client(wrapping: raw).stream(requestProducer: { writer in
                        try await writer.write(.with { $0.clusterID = clusterID; $0.messages = forged; $0.senderBuild = .with { $0.maxClusterVersion = BuildVersions.current.maxClusterVersion } })
                    })
                }
                sentTo[id] = forged.count
            }

            // Every node is alive, refused every forged message, and kept its term.
            try await Task.sleep(for: .milliseconds(300))
            for id in cluster.ids { #expect(cluster.isRunning(id), "node \(id) died:\n\(cluster.log(id).suffix(2_000))") }
            let statuses = await client.status().compactMap(\.status)
            #expect(statuses.count == cluster.size)
            for status in statuses {
                #expect(status.refusedPeerMessages >= UInt64(sentTo[Int(status.nodeID)] ?? 0), "node \(status.nodeID) refused \(status.refusedPeerMessages)")
                #expect(status.term < 1_000, "node \(status.nodeID) adopted term \(status.term)")
            }
            #expect(statuses.map(\.term).max()! <= (termsBefore.max() ?? 0) + 2)
            #expect(cluster.log(1).contains("refused a peer message from node"))

            // The cluster serves, and a node killed and restarted comes back: nothing poisoned
            // was persisted.
            _ = try await client.send(token: alice, to: "bob", body: "after")
            let victim = try await cluster.waitForLeader(client)
            cluster.kill(victim)
            try cluster.start(victim)
            _ = try await client.send(token: alice, to: "bob", body: "after restart")
            try await cluster.waitForConvergence(client)
            let bob = try await client.login(name: "bob", password: "pw").token
            let history = try await client.history(token: bob, with: "alice", pageSize: 10)
            #expect(history.messages.map(\.body) == ["after restart", "after", "before"])
            for id in cluster.ids { #expect(cluster.isRunning(id)) }
        }
    }

    /// The heartbeat that used to make every node trap, and its relatives: each is something a
    /// node must refuse without acting on it.
    static func forgedMessages(from peer: UInt64, to me: UInt64) -> [Chorus_V1_RaftMessage] {
        func message(from: UInt64 = peer, to: UInt64 = me, term: UInt64, _ fill: (inout Chorus_V1_RaftMessage) -> Void) -> Chorus_V1_RaftMessage {
            var m = Chorus_V1_RaftMessage()
            m.from = from
            m.to = to
            m.term = term
            fill(&m)
            return m
        }
        return [
            message(term: .max) { $0.heartbeat = .with { $0.commit = 5 } },
            message(term: .max - 1) { $0.vote = .with { $0.lastIndex = .max; $0.lastTerm = .max } },
            message(term: 1 << 62 + 1) { $0.preVote = .with { $0.lastIndex = 1; $0.lastTerm = 1 } },
            message(term: 1 << 40) { $0.append = .with { $0.prevIndex = 0; $0.prevTerm = 0 } },
            message(term: 1) { $0.append = .with { $0.prevIndex = .max; $0.prevTerm = 1; $0.commit = .max } },
            message(term: 1) { $0.appendResponse = .with { $0.index = .max; $0.hintIndex = .max } },
            message(term: 1) { $0.append = .with { $0.entries = [.with { $0.index = 1; $0.term = 1; $0.kind = 7 }] } },
            message(term: 1) { $0.append = .with { $0.entries = [.with { $0.index = 1; $0.term = 1; $0.kind = 257 }] } },
            message(term: 1) { $0.snapshot = .with { $0.index = 1_000_000; $0.term = 1 } },
            message(term: 1) { _ in },
            message(from: 99, term: 1) { $0.heartbeat = .with { $0.commit = 1 } },
            message(from: 0, term: 1) { $0.voteResponse = .with { $0.reject = false } },
            message(from: me, term: 1) { $0.timeoutNow = .init() },
            message(to: me + 1, term: 1) { $0.heartbeat = .with { $0.commit = 1 } },
            message(term: 1) { $0.heartbeat = .with { $0.hasContext_p = true; $0.context = Data(repeating: 1, count: 4_096) } },
        ]
    }

    @Test func randomAndMutatedRequestsNeverStopANode() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(15)) { client in
            let password = "pw-\(UUID().uuidString)"
            let token = try await client.newUser("fuzz", password: password)
            // Logged in before the fuzz: its failed logins use up this address's allowance.
            let other = try await client.newUser("other", password: "pw")
            let sent = try await client.send(token: token, to: "other", body: "seed")
            let leader = cluster.address(try await cluster.waitForLeader(client))

            // The crafted page token that once crashed the leader.
            let crafted = try await RawChat.withStub(leader, security: cluster.security) { raw in
                do {
                    _ = try await Chorus_V1_Chat.Client(wrapping: raw).history(.with {
                        $0.token = token; $0.otherUser = "other"; $0.pageToken = "18446744073709551615"; $0.oldestFirst = true
                    })
                    return RPCError.Code?.none
                } catch let error as RPCError { return error.code }
            }
            #expect(crafted == .invalidArgument)

            var random = SystemRandomNumberGenerator()
            var fuzz = RequestFuzzer(token: token, messageID: sent)
            var codes: [String: Int] = [:]
            var unexpected: [String] = []
            let calls = Int(ProcessInfo.processInfo.environment["CHORUS_FUZZ_REQUESTS"] ?? "") ?? 3_000
            // Drawn first, then sent eight at a time: a stream with a valid token stays open for
            // its 200 ms, and one after the other those waits were most of the test's time.
            let requests = (0..<calls).map { _ in fuzz.request(using: &random) }
            let answers = try await RawChat.withStub(leader, security: cluster.security) { raw in
                try await withThrowingTaskGroup(of: (Int, RPCError.Code?).self) { group in
                    var answers: [(Int, RPCError.Code?)] = []
                    for (n, (method, bytes)) in requests.enumerated() {
                        if n >= 8, let answer = try await group.next() { answers.append(answer) }
                        group.addTask {
                            var options = CallOptions.defaults
                            // A subscription with a valid token stays open: end it soon.
                            options.timeout = method == "Subscribe" || method == "SendStream" || method == "ReadStream" ? .milliseconds(200) : .seconds(2)
                            do {
                                let answer = try await raw.unary(
                                    request: ClientRequest(message: bytes),
                                    descriptor: MethodDescriptor(fullyQualifiedService: "chorus.v1.Chat", method: method),
                                    serializer: RawSerializer(), deserializer: RawDeserializer(), options: options
                                ) { try $0.message }
                                // A stream answers each request with the status its unary call would end with.
                                return (n, RequestFuzzer.streamedStatus(method, answer))
                            } catch let error as RPCError {
                                return (n, error.code)
                            }
                        }
                    }
                    for try await answer in group { answers.append(answer) }
                    return answers.sorted { $0.0 < $1.0 }
                }
            }
            for (n, code) in answers {
                codes["\(code.map { "\($0)" } ?? "ok")", default: 0] += 1
                // A server fault, not an answer: an input the node did not expect.
                if let code, [.internalError, .unknown, .dataLoss].contains(code), unexpected.count < 10 {
                    let (method, bytes) = requests[n]
                    unexpected.append("\(method) #\(n) -> \(code): \(bytes.prefix(64).map { String($0, radix: 16) }.joined(separator: " "))")
                }
            }
            print("request fuzz: \(calls) calls, status codes \(codes.sorted { $0.key < $1.key })")
            #expect(unexpected.isEmpty, "\(unexpected.joined(separator: "\n"))")
            #expect(codes["invalidArgument", default: 0] > 0)
            for id in cluster.ids { #expect(cluster.isRunning(id), "node \(id) died:\n\(cluster.log(id).suffix(2_000))") }

            // Still serving: a write, a read, and every node answers.
            _ = try await client.send(token: token, to: "other", body: "after the fuzz")
            let history = try await client.history(token: other, with: "fuzz", pageSize: 1)
            #expect(history.messages.map(\.body) == ["after the fuzz"])
            #expect(await client.status().compactMap(\.status).count == cluster.size)
        }
    }
}

/// Requests of every `Chat` method: well-formed messages with hostile field values (with the
/// caller's valid token half of the time), and such messages with their bytes mutated.
struct RequestFuzzer {
    let token: String
    let messageID: UInt64
    var sequence: UInt64 = 0

    static let methods = ["CheckUsername", "CreateAccount", "Login", "Logout", "ListAccounts", "SendMessage", "SendStream",
                          "ReadUndelivered", "AcknowledgeMessages", "History", "DeleteMessages", "DeleteAccount", "Subscribe", "ClusterStatus", "ReadStream"]

    init(token: String, messageID: UInt64) {
        self.token = token
        self.messageID = messageID
    }

    mutating func request(using random: inout some RandomNumberGenerator) -> (String, [UInt8]) {
        let method = Self.methods.randomElement(using: &random)!
        var bytes = (try? message(for: method, using: &random).serializedBytes() as [UInt8]) ?? []
        if Int.random(in: 0..<3, using: &random) == 0 { mutate(&bytes, using: &random) }
        return (method, bytes)
    }

    mutating func message(for method: String, using random: inout some RandomNumberGenerator) -> any SwiftProtobuf.Message {
        let token = Bool.random(using: &random) ? self.token : string(using: &random)
        sequence += 1
        let requestID = Chorus_V1_RequestID.with {
            $0.clientID = Int.random(in: 0..<5, using: &random) == 0 ? string(using: &random) : "fuzzer"
            $0.sequence = Bool.random(using: &random) ? sequence : number(using: &random)
        }
        switch method {
        case "CheckUsername": return Chorus_V1_CheckUsernameRequest.with { $0.name = string(using: &random) }
        case "CreateAccount": return Chorus_V1_CreateAccountRequest.with { $0.requestID = requestID; $0.name = string(using: &random); $0.password = string(using: &random) }
        case "Login": return Chorus_V1_LoginRequest.with { $0.requestID = requestID; $0.name = Bool.random(using: &random) ? "fuzz" : string(using: &random); $0.password = string(using: &random) }
        // Never the valid token: logging the fuzzer out would end the test's session.
        case "Logout":
            let other = string(using: &random)
            return Chorus_V1_LogoutRequest.with { $0.requestID = requestID; $0.token = other == self.token ? "" : other }
        case "ListAccounts": return Chorus_V1_ListAccountsRequest.with {
            $0.token = token; $0.pattern = string(using: &random); $0.pageSize = UInt32(truncatingIfNeeded: number(using: &random)); $0.pageToken = string(using: &random)
        }
        case "SendMessage", "SendStream": return Chorus_V1_SendMessageRequest.with {
            $0.requestID = requestID; $0.token = token; $0.recipient = Bool.random(using: &random) ? "other" : string(using: &random); $0.body = string(using: &random)
        }
        case "ReadUndelivered": return Chorus_V1_ReadUndeliveredRequest.with { $0.token = token; $0.limit = UInt32(truncatingIfNeeded: number(using: &random)) }
        case "AcknowledgeMessages": return Chorus_V1_AcknowledgeMessagesRequest.with { $0.requestID = requestID; $0.token = token; $0.messageIds = ids(using: &random) }
        case "History": return Chorus_V1_HistoryRequest.with {
            $0.token = token; $0.otherUser = Bool.random(using: &random) ? "other" : string(using: &random)
            $0.pageSize = UInt32(truncatingIfNeeded: number(using: &random)); $0.oldestFirst = Bool.random(using: &random)
            $0.pageToken = Bool.random(using: &random) ? "\(number(using: &random))" : string(using: &random)
        }
        case "DeleteMessages": return Chorus_V1_DeleteMessagesRequest.with { $0.requestID = requestID; $0.token = token; $0.messageIds = ids(using: &random) }
        // A random password: the fuzzer's own is a UUID it never sends here.
        case "DeleteAccount": return Chorus_V1_DeleteAccountRequest.with { $0.requestID = requestID; $0.token = token; $0.password = string(using: &random) }
        case "Subscribe": return Chorus_V1_SubscribeRequest.with { $0.token = token; $0.afterEventID = number(using: &random) }
        case "ReadStream":
            let read: Chorus_V1_ReadRequest.OneOf_Read?
            switch Int.random(in: 0..<4, using: &random) {
            case 0: read = .history(message(for: "History", using: &random) as! Chorus_V1_HistoryRequest)
            case 1: read = .undelivered(message(for: "ReadUndelivered", using: &random) as! Chorus_V1_ReadUndeliveredRequest)
            case 2: read = .listAccounts(message(for: "ListAccounts", using: &random) as! Chorus_V1_ListAccountsRequest)
            default: read = nil
            }
            return Chorus_V1_ReadRequest.with { $0.callID = number(using: &random); $0.read = read }
        default: return Chorus_V1_ClusterStatusRequest()
        }
    }

    /// The status a stream's reply carries for its one request (nil when it succeeded, and for
    /// the unary methods, whose status is the call's own).
    static func streamedStatus(_ method: String, _ answer: [UInt8]) -> RPCError.Code? {
        let status: Int32
        switch method {
        case "SendStream": status = (try? Chorus_V1_SendReply(serializedBytes: answer))?.statusCode ?? 0
        case "ReadStream": status = (try? Chorus_V1_ReadReply(serializedBytes: answer))?.statusCode ?? 0
        default: return nil
        }
        return status == 0 ? nil : Status.Code(rawValue: Int(status)).flatMap(RPCError.Code.init) ?? .unknown
    }

    func number(using random: inout some RandomNumberGenerator) -> UInt64 {
        [0, 1, 2, 10, 999, 1_000, 1_001, messageID, messageID &+ 1, UInt64(UInt32.max), UInt64(Int32.max) + 1,
         1 << 62, (1 << 62) + 1, .max - 1, .max, UInt64.random(in: 0 ... .max, using: &random)].randomElement(using: &random)!
    }

    func ids(using random: inout some RandomNumberGenerator) -> [UInt64] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: []
        case 1: [messageID &+ 1_000_000]
        case 2: (0..<Int.random(in: 1...5, using: &random)).map { _ in number(using: &random) }
        default: [UInt64](repeating: 1, count: Int.random(in: 999...1_100, using: &random))
        }
    }

    func string(using random: inout some RandomNumberGenerator) -> String {
        switch Int.random(in: 0..<12, using: &random) {
        case 0: ""
        case 1: "*"
        case 2: String(repeating: "a", count: Int.random(in: 30...40, using: &random))
        case 3: String(repeating: "é", count: Int.random(in: 100...600, using: &random))
        case 4: String(repeating: "x", count: Int.random(in: 60_000...70_000, using: &random))
        case 5: "\u{0}\u{1}\u{FFFF}<img src=x onerror=alert(1)>"
        case 6: "18446744073709551615"
        case 7: "-1"
        case 8: "a?b*c" + String(repeating: "*?", count: Int.random(in: 1...40, using: &random))
        case 9: "other"
        case 10: token
        default: String((0..<Int.random(in: 1...64, using: &random)).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &random))) })
        }
    }

    func mutate(_ bytes: inout [UInt8], using random: inout some RandomNumberGenerator) {
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            switch Int.random(in: 0..<5, using: &random) {
            case 0 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 1 where !bytes.isEmpty: bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
            case 2: bytes.insert(UInt8.random(in: 0 ... .max, using: &random), at: Int.random(in: 0...bytes.count, using: &random))
            case 3: bytes += [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
            default: bytes += (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0 ... .max, using: &random) }
            }
        }
    }
}

extension EdgeTests {
    /// A data directory holding a term no node could have written (what an older version
    /// persisted from a forged heartbeat) stops the node at start with what and where, not a
    /// trap on every restart; `chorus-tools status` names the same problem.
    @Test func unsoundDataDirectoryIsRefusedAtStartWithWhatAndWhere() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await client.newUser("alice", password: "pw")
            try await cluster.waitForConvergence(client)
        }
        cluster.kill(1)
        do {
            let log = try LogStore(directory: cluster.dataDirectory(1) + "/log")
            var hard = try log.hardState()
            hard.term = .max
            try log.setHardState(hard)
        }
        try cluster.start(1)
        let exit = try await cluster.waitForExit(1, within: .seconds(20))
        #expect(!exit.signaled, "the node trapped instead of refusing:\n\(cluster.log(1).suffix(2_000))")
        #expect(exit.status != 0)
        let log = cluster.log(1)
        #expect(log.contains("refusing to start on an unsound data directory"))
        #expect(log.contains("the stored term 18446744073709551615 is beyond 4611686018427387904"))
        let status = try await runTool(["status", cluster.dataDirectory(1)])
        #expect(status.status == 0)
        #expect(status.output.contains("the stored term 18446744073709551615 is beyond"))
    }
}
