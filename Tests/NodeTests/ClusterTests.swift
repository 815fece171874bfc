import API
import Client
import GRPCCore
import Foundation
import Projections
import Testing

/// A cluster per test: `chorus-node` processes where a process is the point, nodes in the
/// test process elsewhere (`TestCluster.Placement`, stopped as each test ends). Serialized,
/// one cluster at a time: consensus, durability, crashes and the tools. It runs beside
/// `EdgeTests`, the other lane of clusters; the fault-injection suite runs alone, after both.
@Suite(.serialized, .inProcessClusters) struct ClusterTests {
    @Test func servesEveryChatOperationEndToEnd() async throws {
        let cluster = try TestCluster(placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            #expect(try await client.checkUsername("alice") == (true, nil))
            #expect(try await client.checkUsername("bad name").available == false)

            try await client.createAccount(name: "alice", password: "a-pw")
            try await client.createAccount(name: "bob", password: "b-pw")
            #expect(try await client.checkUsername("alice").available == false)
            #expect(await failure { try await client.createAccount(name: "alice", password: "x") } == .alreadyExists("the name 'alice' is taken"))
            #expect(await failure { _ = try await client.login(name: "alice", password: "wrong") } == .wrongCredentials("wrong password for 'alice'"))

            let alice = try await client.login(name: "alice", password: "a-pw").token
            let bob = try await client.login(name: "bob", password: "b-pw")
            #expect(bob.unreadCount == 0)

            // Live push to a subscriber.
            let events = client.subscribe(token: bob.token)
            var iterator = events.makeAsyncIterator()
            guard case .attached = try await iterator.next() else { Issue.record("no attach event"); return }
            let first = try await client.send(token: alice, to: "bob", body: "hello bob")
            let pushed = try await nextMessage(&iterator)
            #expect(pushed?.id == first && pushed?.body == "hello bob")

            // Listing shows bob online (his stream is attached).
            let page = try await client.listAccounts(token: alice, pattern: "*", pageSize: 10)
            #expect(page.accounts.map(\.name) == ["alice", "bob"])
            #expect(page.accounts.first { $0.name == "bob" }?.online == true)

            // Queued messages, read in batches and acknowledged.
            let second = try await client.send(token: alice, to: "bob", body: "second")
            let third = try await client.send(token: alice, to: "bob", body: "third")
            _ = try await nextMessage(&iterator)
            _ = try await nextMessage(&iterator)
            // Taking them acknowledges them (in the background, as they are taken).
            for _ in 0..<50 where try await !client.readUndelivered(token: bob.token, limit: 5, acknowledge: false).messages.isEmpty {
                try await Task.sleep(for: .milliseconds(50))
            }
            let relogin = try await client.login(name: "bob", password: "b-pw")
            #expect(relogin.unreadCount == 0, "the subscription acknowledged what it pushed")
            let quiet = try await client.send(token: bob.token, to: "alice", body: "reply")
            let unread = try await client.readUndelivered(token: alice, limit: 5)
            #expect(unread.messages.map(\.id) == [quiet])
            #expect(try await client.readUndelivered(token: alice, limit: 5).messages.isEmpty)

            // History, newest first, paged.
            let history = try await client.history(token: alice, with: "bob", pageSize: 2)
            #expect(history.messages.map(\.id) == [quiet, third])
            let older = try await client.history(token: alice, with: "bob", pageSize: 2, pageToken: history.nextPageToken)
            #expect(older.messages.map(\.id) == [second, first])

            // Deleting is pushed to the other side.
            #expect(try await client.deleteMessages(token: alice, ids: [second]) == 1)
            var sawDelete = false
            for _ in 0..<5 {
                if case .messagesDeleted(let ids)? = try await iterator.next() { sawDelete = ids == [second]; break }
            }
            #expect(sawDelete)
            #expect(await failure { try await client.deleteMessages(token: alice, ids: [second]) }?.kind == "notFound")

            // Deleting an account frees the name and ends its sessions.
            try await client.deleteAccount(token: bob.token, password: "b-pw")
            #expect(try await client.checkUsername("bob") == (true, nil))
            #expect(await failure { _ = try await client.send(token: bob.token, to: "alice", body: "ghost") }?.kind == "wrongCredentials")
            try await client.logout(token: alice)
            #expect(await failure { _ = try await client.readUndelivered(token: alice) } == .wrongCredentials("the session token is unknown or has ended; log in again"))

            let statuses = await client.status().compactMap(\.status)
            #expect(statuses.count == 5)
            #expect(statuses.filter { $0.role == "leader" }.count == 1)

            // The standard health service.
            let health = try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
                let stub = Grpc_Health_V1_Health.Client(wrapping: raw)
                let serving = try await stub.check(.with { $0.service = "chorus.v1.Chat" }).status
                let unknown: RPCError.Code?
                do {
                    _ = try await stub.check(.with { $0.service = "no.such.Service" })
                    unknown = nil
                } catch let error as RPCError {
                    unknown = error.code
                }
                return (serving, unknown)
            }
            #expect(health.0 == .serving)
            #expect(health.1 == .notFound)
        }
    }

    @Test func killedLeaderIsReplacedAndNothingAcknowledgedIsLost() async throws {
        let cluster = try TestCluster()
        cluster.metrics = true
        try cluster.startAll()
        try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            var sent: [UInt64] = []
            for n in 0..<20 { sent.append(try await client.send(token: alice, to: "bob", body: "m\(n)")) }

            cluster.kill(leader)
            let clock = ContinuousClock()
            let start = clock.now
            let next = try await cluster.waitForLeader(client, excluding: [leader])
            #expect(next != leader)
            #expect(clock.now - start < .seconds(5))
            // The survivors saw the killed leader's streams close and campaigned early
            // (`RaftCore.connectionLost`), rather than waiting for its silence.
            var early: [Int] = []
            for id in cluster.ids where id != leader {
                let metrics = try await httpGet(cluster.metricsAddress(id), "/metrics").body
                if metrics.split(separator: "\n").contains(where: { $0.hasPrefix("chorus_raft_leader_connection_lost_total ") && !$0.hasSuffix(" 0") }) {
                    early.append(id)
                }
            }
            #expect(!early.isEmpty, "no survivor counted the leader's connection closing")

            let history = try await client.history(token: alice, with: "bob", pageSize: 100, oldestFirst: true)
            #expect(history.messages.map(\.id) == sent)

            // The same request id twice, even across a leader change: applied once.
            let id = try await client.send(token: alice, to: "bob", body: "after failover")
            let count = try await client.history(token: alice, with: "bob", pageSize: 100).messages.filter { $0.body == "after failover" }.count
            #expect(count == 1)
            #expect(id > sent.last!)
        }
    }

    @Test func sendStreamAnswersEverySendAndOutlivesBadOnes() async throws {
        let cluster = try TestCluster(placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let leader = try await cluster.waitForLeader(client)
            // Each request its own client id, as the client library's lanes do: sequences of
            // one client id must rise, and a stream carries many requests at once.
            func send(_ n: UInt64, token: String = alice, to recipient: String = "bob", body: String) -> Chorus_V1_SendMessageRequest {
                .with {
                    $0.requestID = .with { $0.clientID = "stream-\(n)"; $0.sequence = 1 }
                    $0.token = token
                    $0.recipient = recipient
                    $0.body = body
                }
            }
            var requests = (1...40).map { send(UInt64($0), body: "s\($0)") }
            requests.insert(send(41, token: "not-a-token", body: "bad token"), at: 5)
            requests.insert(send(42, body: ""), at: 10)
            requests.insert(send(43, to: "nobody", body: "no such user"), at: 15)
            requests.insert(send(7, body: "s7"), at: 30)  // a retry of request 7: the same id back
            let replies = try await RawChat.sendStream(cluster.address(leader), security: cluster.security, requests)

            #expect(replies.count == requests.count, "one reply per request")
            let byRequest = Dictionary(grouping: replies) { UInt64($0.requestID.clientID.dropFirst("stream-".count))! }
            #expect(byRequest[41]?.first?.statusCode == Int32(RPCError.Code.unauthenticated.rawValue))
            #expect(byRequest[42]?.first?.statusCode == Int32(RPCError.Code.invalidArgument.rawValue))
            #expect(byRequest[43]?.first?.statusCode == Int32(RPCError.Code.notFound.rawValue))
            #expect(byRequest[7]?.count == 2 && Set(byRequest[7]!.map(\.messageID)).count == 1, "a repeated request id is applied once")
            let sent = (1...40).compactMap { byRequest[UInt64($0)]?.first }
            #expect(sent.allSatisfy { $0.statusCode == 0 && $0.messageID > 0 })
            let stored = try await client.history(token: alice, with: "bob", pageSize: 100, oldestFirst: true).messages
            #expect(stored.map(\.body) == (1...40).map { "s\($0)" }, "every good send stored once, in the order sent")
            #expect(stored.map(\.id) == sent.map(\.messageID))

            // A follower answers every send with UNAVAILABLE and the leader's address.
            let follower = cluster.ids.first { $0 != leader }!
            let refused = try await RawChat.sendStream(cluster.address(follower), security: cluster.security, [send(100, body: "to a follower")])
            #expect(refused.first?.statusCode == Int32(RPCError.Code.unavailable.rawValue))
            #expect(refused.first?.leader == "\(leader)=\(cluster.address(leader))")

            // The client library multiplexes many concurrent sends over its stream.
            let ids = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for n in 0..<200 {
                    group.addTask { try await client.send(token: alice, to: "bob", body: "c\(n)") }
                }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            #expect(Set(ids).count == 200)
            let all = try await client.history(token: alice, with: "bob", pageSize: 1000).messages
            #expect(all.filter { $0.body.hasPrefix("c") }.count == 200)
        }
    }

    @Test func readStreamAnswersEveryReadOnAnyNodeAndOutlivesBadOnes() async throws {
        let cluster = try TestCluster(placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            for n in 1...12 { _ = try await client.send(token: alice, to: "bob", body: "m\(n)") }
            let leader = try await cluster.waitForLeader(client)
            let follower = cluster.ids.first { $0 != leader }!
            func read(_ id: UInt64, _ read: Chorus_V1_ReadRequest.OneOf_Read?) -> Chorus_V1_ReadRequest {
                .with { $0.callID = id; $0.read = read }
            }
            func history(_ token: String, with other: String = "bob") -> Chorus_V1_ReadRequest.OneOf_Read {
                .history(.with { $0.token = token; $0.otherUser = other; $0.pageSize = 3 })
            }
            var requests = (1...20).map { read(UInt64($0), history(alice)) }
            requests.insert(read(21, nil), at: 3)
            requests.insert(read(22, history("not-a-token")), at: 6)
            requests.insert(read(23, history(alice, with: "nobody")), at: 9)
            requests.insert(read(24, .listAccounts(.with { $0.token = bob; $0.pattern = "*" })), at: 12)
            requests.insert(read(25, .undelivered(.with { $0.token = bob; $0.limit = 5 })), at: 15)

            // The stream's reads are linearizable on a follower too: the last send, acknowledged
            // before the stream opened, is in every page.
            let replies = try await RawChat.readStream(cluster.address(follower), security: cluster.security, requests)
            #expect(replies.count == requests.count, "one reply per request")
            let byCall = Dictionary(grouping: replies, by: \.callID)
            #expect(byCall.values.allSatisfy { $0.count == 1 })
            for call in UInt64(1)...20 {
                guard case let .history(page)? = byCall[call]?.first?.response else { Issue.record("call \(call): \(String(describing: byCall[call]))"); continue }
                #expect(page.messages.map(\.body) == ["m12", "m11", "m10"], "call \(call)")
            }
            #expect(byCall[21]?.first?.statusCode == Int32(RPCError.Code.invalidArgument.rawValue))
            #expect(byCall[22]?.first?.statusCode == Int32(RPCError.Code.unauthenticated.rawValue))
            #expect(byCall[23]?.first?.statusCode == Int32(RPCError.Code.notFound.rawValue))
            guard case let .listAccounts(accounts)? = byCall[24]?.first?.response else { Issue.record("no account list"); return }
            #expect(accounts.accounts.map(\.name) == ["alice", "bob"])
            guard case let .undelivered(undelivered)? = byCall[25]?.first?.response else { Issue.record("no undelivered messages"); return }
            #expect(undelivered.messages.map(\.body) == ["m1", "m2", "m3", "m4", "m5"] && undelivered.unreadCount == 12)

            // The client library multiplexes many concurrent reads over its stream, each
            // matched to its caller.
            let pages = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
                for n in 1...100 {
                    group.addTask { (n, try await client.history(token: alice, with: "bob", pageSize: n % 12 + 1, oldestFirst: true).messages.map(\.body)) }
                }
                return try await group.reduce(into: [Int: [String]]()) { $0[$1.0] = $1.1 }
            }
            for n in 1...100 { #expect(pages[n] == (1...(n % 12 + 1)).map { "m\($0)" }, "reader \(n)") }
        }
    }

    @Test func retriedRequestIDIsAppliedOnce() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let leader = try await cluster.waitForLeader(client)
            let first = try await RawChat.send(cluster.address(leader), security: cluster.security, clientID: "retry-test", sequence: 1, token: alice, to: "bob", body: "once")
            cluster.kill(leader)
            // The first node to lead after the kill may lose its leadership again before it
            // answers; a client retries the same id with whichever node leads then.
            let again = try await retryingUnavailable {
                let next = try await cluster.waitForLeader(client, excluding: [leader])
                return try await RawChat.send(cluster.address(next), security: cluster.security, clientID: "retry-test", sequence: 1, token: alice, to: "bob", body: "once")
            }
            #expect(again == first, "the retry returns the original message id")
            let stored = try await client.history(token: alice, with: "bob", pageSize: 10).messages.filter { $0.body == "once" }
            #expect(stored.count == 1)
        }
    }

    @Test func twoDownStillServesAThirdStopsWritesCleanly() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(4)) { client in
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let leader = try await cluster.waitForLeader(client)
            let followers = cluster.ids.filter { $0 != leader }
            cluster.kill(followers[0])
            cluster.kill(followers[1])
            let id = try await client.send(token: alice, to: "bob", body: "with three")
            #expect(try await client.history(token: alice, with: "bob").messages.first?.id == id)

            cluster.kill(followers[2])
            // The leader took the write and could not commit it: the client cannot know
            // whether it will (it may, once a majority is back), and says so.
            #expect(await failure { _ = try await client.send(token: alice, to: "bob", body: "with two") }?.kind == "outcomeUnknown")
            do {
                _ = try await client.send(token: alice, to: "bob", body: "with two again")
                Issue.record("a write succeeded with 2 of 5 nodes")
            } catch let error as ChorusError {
                guard case .outcomeUnknown = error else { Issue.record("expected an unknown outcome, got \(error)"); return }
            }

            try cluster.start(followers[2])
            let resumed = try await retrying { try await client.send(token: alice, to: "bob", body: "resumed") }
            let bodies = try await client.history(token: alice, with: "bob", pageSize: 10).messages.map(\.body)
            #expect(bodies.contains("resumed") && bodies.contains("with three"))
            #expect(resumed > id)
        }
    }

    @Test func fullRestartBringsEverythingBack() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        let (alice, sent) = try await cluster.withClient { client in
            let alice = try await client.newUser("alice", password: "pw-a")
            _ = try await client.newUser("bob", password: "pw-b")
            var sent: [UInt64] = []
            for n in 0..<10 { sent.append(try await client.send(token: alice, to: "bob", body: "m\(n)")) }
            return (alice, sent)
        }
        for id in cluster.ids { cluster.kill(id) }
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let bob = try await client.login(name: "bob", password: "pw-b")
            #expect(bob.unreadCount == 10)
            let history = try await client.history(token: alice, with: "bob", pageSize: 50, oldestFirst: true)
            #expect(history.messages.map(\.id) == sent, "alice's session and every message survive")
            let read = try await client.readUndelivered(token: bob.token, limit: 4)
            #expect(read.messages.map(\.id) == Array(sent.prefix(4)))
            #expect(read.unreadCount == 6)
        }
    }

    @Test func laggingFollowerCatchesUpAndDigestsAgree() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let lagging = cluster.ids.first { $0 != leader }!
            var tokens: [String] = []
            for n in 0..<8 { tokens.append(try await client.newUser("user\(n)")) }
            cluster.kill(lagging)
            let senders = tokens
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for n in 0..<125 {
                            _ = try await client.send(token: senders[worker], to: "user\((worker + 1) % 8)", body: "w\(worker)-\(n)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            try cluster.start(lagging)
            try await cluster.waitForConvergence(client, within: .seconds(60))
        }
        // All at once, so that no new leader appends anything after the others stopped.
        cluster.stopAll()
        var digests: [String] = []
        var applied: [UInt64] = []
        for id in cluster.ids {
            let state = try ChatState(directory: StateDirectory(directory: cluster.dataDirectory(id) + "/state").currentPath, readOnly: true)
            digests.append(try state.digest())
            applied.append(try state.lastApplied())
        }
        #expect(Set(applied).count == 1, "applied indexes differ: \(applied)")
        #expect(Set(digests).count == 1, "projection digests differ: \(digests)")
        // The operator's tool agrees.
        let verify = Process()
        verify.executableURL = TestCluster.executable.deletingLastPathComponent().appendingPathComponent("chorus-tools")
        verify.arguments = ["verify"] + cluster.ids.map(cluster.dataDirectory)
        verify.standardOutput = Pipe()
        try verify.run()
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0)
    }

    @Test func subscriberMissesNothingAcrossALeaderKill() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            var iterator = client.subscribe(token: bob).makeAsyncIterator()
            guard case .attached = try await iterator.next() else { Issue.record("not attached"); return }
            var expected: Set<String> = []
            _ = try await client.send(token: alice, to: "bob", body: "before")
            expected.insert("before")
            var received: Set<String> = []
            if let message = try await nextMessage(&iterator) { received.insert(message.body) }

            let leader = try await cluster.waitForLeader(client)
            cluster.kill(leader)
            for n in 0..<5 {
                _ = try await client.send(token: alice, to: "bob", body: "after-\(n)")
                expected.insert("after-\(n)")
            }
            let clock = ContinuousClock()
            let end = clock.now + .seconds(20)
            while received != expected && clock.now < end {
                guard let event = try await iterator.next() else { break }
                if case let .message(message) = event { received.insert(message.body) }
            }
            #expect(received == expected)
        }
    }
}

/// Skips `.reconnecting` and other events up to the next message.
func nextMessage(_ iterator: inout Subscription.AsyncIterator) async throws -> ChatMessage? {
    while let event = try await iterator.next() {
        if case let .message(message) = event { return message }
    }
    return nil
}

/// Retries `body` while the cluster is unavailable, for up to 20 s.
func retrying<R>(_ body: () async throws -> R) async throws -> R {
    let clock = ContinuousClock()
    let end = clock.now + .seconds(20)
    while true {
        do {
            return try await body()
        } catch let error as ChorusError {
            guard case .clusterUnavailable = error, clock.now < end else { throw error }
        }
    }
}

/// `body`'s result, retried for up to 20 s while a raw gRPC call fails with UNAVAILABLE (no
/// leader yet, or leadership moved while the request waited).
func retryingUnavailable<R>(_ body: () async throws -> R) async throws -> R {
    let clock = ContinuousClock()
    let end = clock.now + .seconds(20)
    while true {
        do {
            return try await body()
        } catch let error as RPCError {
            guard error.code == .unavailable, clock.now < end else { throw error }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// The `ChorusError` `body` fails with (nil if it succeeds; any other error is recorded).
func failure(_ body: () async throws -> Void) async -> ChorusError? {
    do {
        try await body()
        return nil
    } catch let error as ChorusError {
        return error
    } catch {
        Issue.record("not a ChorusError: \(error)")
        return nil
    }
}

extension ChorusError {
    /// The case, without its message: for failures whose wording is not the point.
    var kind: String {
        switch self {
        case .notFound: "notFound"
        case .alreadyExists: "alreadyExists"
        case .wrongCredentials: "wrongCredentials"
        case .notAuthorized: "notAuthorized"
        case .invalidInput: "invalidInput"
        case .clusterUnavailable: "clusterUnavailable"
        case .failedPrecondition: "failedPrecondition"
        case .busy: "busy"
        case .outcomeUnknown: "outcomeUnknown"
        case .other: "other"
        }
    }
}
