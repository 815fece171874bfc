import API
import Client
import Foundation
import GRPCCore
import Testing

/// Presence, subscriptions and per-address limits against real nodes.
extension EdgeTests {
    /// Whether `name` is shown online, as the account list says.
    static func isOnline(_ client: ChorusClient, _ token: String, _ name: String) async throws -> Bool {
        try await client.listAccounts(token: token, pattern: name).accounts.first { $0.name == name }?.online ?? false
    }

    /// Polls `condition` every 20 ms for up to `within`; returns how long it took.
    static func waitUntil(within: Duration, _ condition: () async throws -> Bool) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        while try await !condition() {
            guard clock.now - start < within else { throw TestFailure("still not so after \(within)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return clock.now - start
    }

    @Test func aSubscriberThatGoesAwayIsShownOfflineAtOnce() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            let leader = try await cluster.waitForLeader(client)
            let security = cluster.security
            // bob's stream, on a connection of its own, read by a task we then cancel: the
            // client resets the stream, as an app that quits or crashes would.
            let subscription = Task {
                try await RawChat.withStub(cluster.address(leader), security: security) { raw in
                    try await Chorus_V1_Chat.Client(wrapping: raw).subscribe(.with { $0.token = bob }) { response in
                        for try await _ in response.messages {}
                    }
                }
            }
            _ = try await Self.waitUntil(within: .seconds(10)) { try await Self.isOnline(client, alice, "bob") }
            subscription.cancel()
            let offline = try await Self.waitUntil(within: .seconds(10)) { try await !Self.isOnline(client, alice, "bob") }
            print("bob was shown offline \(offline) after his stream was cancelled")
        }
    }

    /// Bounded in time: if a stream of bob's is lost on the way (a connection given up on a
    /// starved machine), the 17th is accepted and would be read forever.
    @Test(.timeLimit(.minutes(3)))
    func aSubscriberCatchesUpOnEveryUndeliveredMessageAndAUserHasAtMost16Streams() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            let leader = try await cluster.waitForLeader(client)
            // 1,200 messages while bob is away: more than one page of catch-up.
            let requests = RawChat.sends(1_200, clientID: "bulk", token: alice, to: "bob", body: "m")
            let replies = try await RawChat.sendStream(cluster.address(leader), security: cluster.security, requests)
            #expect(replies.allSatisfy { $0.statusCode == 0 })
            let sent = Set(replies.map(\.messageID))
            #expect(sent.count == 1_200)

            var received = Set<UInt64>()
            var feed = client.subscribe(token: bob, acknowledge: false).makeAsyncIterator()
            let deadline = ContinuousClock.now + .seconds(60)
            while received.count < 1_200 && ContinuousClock.now < deadline {
                guard let event = try await feed.next() else { break }
                if case let .message(message) = event { received.insert(message.id) }
            }
            #expect(received == sent)

            // bob now has one stream (the feed); 15 more fit, the 17th is refused.
            let security = cluster.security
            let status = try await RawChat.withStub(cluster.address(leader), security: security) { raw in
                let chat = Chorus_V1_Chat.Client(wrapping: raw)
                let (attached, attach) = AsyncStream<Void>.makeStream()
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<15 {
                        group.addTask {
                            try await chat.subscribe(.with { $0.token = bob }) { response in
                                for try await event in response.messages where event.attached.unreadCount >= 0 && event.id == 0 { attach.yield() }
                            }
                        }
                    }
                    var count = 0
                    for await _ in attached {
                        count += 1
                        if count == 15 { break }
                    }
                    defer { group.cancelAll() }
                    do {
                        try await chat.subscribe(.with { $0.token = bob }) { response in for try await _ in response.messages {} }
                        return (RPCError.Code?.none, "")
                    } catch let error as RPCError {
                        return (Optional(error.code), error.message)
                    }
                }
            }
            #expect(status.0 == .resourceExhausted)
            #expect(status.1 == "'bob' has 16 live subscriptions on this node, the most it allows; close one first")
        }
    }

    @Test func failedLoginsAndAccountCreationsAreLimitedPerAddress() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--failed-logins-per-minute", "3", "--account-creations-per-minute", "2"]
        try cluster.startAll()
        _ = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let results = try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            func outcome(_ call: () async throws -> Void) async -> (RPCError.Code?, String, String?) {
                do {
                    try await call()
                    return (nil, "", nil)
                } catch let error as RPCError {
                    return (error.code, error.message, error.metadata[stringValues: "chorus-retry-after-ms"].first { _ in true })
                } catch {
                    return (.unknown, "\(error)", nil)
                }
            }
            var results: [(RPCError.Code?, String, String?)] = []
            for n in 1...3 {
                results.append(await outcome {
                    _ = try await chat.createAccount(.with { $0.requestID = .with { $0.clientID = "c"; $0.sequence = UInt64(n) }; $0.name = "user\(n)"; $0.password = "pw" })
                })
            }
            for n in 1...4 {
                results.append(await outcome {
                    _ = try await chat.login(.with { $0.requestID = .with { $0.clientID = "l"; $0.sequence = UInt64(n) }; $0.name = "user1"; $0.password = n == 4 ? "pw" : "wrong" })
                })
            }
            return results
        }
        #expect(results.map(\.0) == [nil, nil, .resourceExhausted, .unauthenticated, .unauthenticated, .unauthenticated, .resourceExhausted])
        #expect(results[2].1.hasPrefix("too many accounts created from this address (at most 2 a minute); retry in "), "\(results[2].1)")
        #expect(results[6].1.hasPrefix("too many failed password checks from this address (at most 3 a minute); retry in "), "\(results[6].1)")
        // When to retry, in milliseconds: within the next token's 30 s and 20 s.
        #expect((Int(results[2].2 ?? "") ?? 0) > 25_000 && (Int(results[2].2 ?? "") ?? 0) <= 30_000)
        #expect((Int(results[6].2 ?? "") ?? 0) > 15_000 && (Int(results[6].2 ?? "") ?? 0) <= 20_000)
    }

    /// A guess is taken from the address's bucket before the password is checked: guesses
    /// sent at once pass no more than the limit (checking first and taking only after a
    /// failure let them all through). A right password gives its guess back, so its owner is
    /// never locked out by logging in.
    @Test func concurrentPasswordGuessesPassNoMoreThanTheLimit() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--failed-logins-per-minute", "3"]
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            try await client.createAccount(name: "owner", password: "right")
            for _ in 1...5 { _ = try await client.login(name: "owner", password: "right") }
        }
        let codes = try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            return await withTaskGroup(of: RPCError.Code?.self) { group in
                for n in 1...12 {
                    group.addTask {
                        do {
                            _ = try await chat.login(.with { $0.requestID = .with { $0.clientID = "g\(n)"; $0.sequence = 1 }; $0.name = "owner"; $0.password = "guess \(n)" })
                            return nil
                        } catch let error as RPCError {
                            return error.code
                        } catch {
                            return .unknown
                        }
                    }
                }
                return await group.reduce(into: [RPCError.Code?]()) { $0.append($1) }
            }
        }
        #expect(codes.filter { $0 == .unauthenticated }.count == 3, "\(codes)")
        #expect(codes.filter { $0 == .resourceExhausted }.count == 9, "\(codes)")
    }
}

extension EdgeTests {
    @Test func proposalsPastTheLimitFailFastAndTheClientLibraryBacksOff() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--max-pending-proposals", "2"]
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            // 300 sends on one stream at once: the node admits two at a time and refuses the
            // rest at once, saying when to come back.
            let requests = RawChat.sends(300, clientID: "burst", token: alice, to: "bob", body: "raw")
            let replies = try await RawChat.sendStream(cluster.address(1), security: cluster.security, requests)
            let refused = replies.filter { $0.statusCode == Int32(RPCError.Code.resourceExhausted.rawValue) }
            let accepted = replies.filter { $0.statusCode == 0 }
            #expect(replies.count == 300)
            #expect(refused.count + accepted.count == 300)
            #expect(!refused.isEmpty && !accepted.isEmpty)
            #expect(refused.allSatisfy { $0.retryAfterMs == 50 && $0.statusMessage.hasSuffix("waiting to commit, as many as it allows; retry shortly") })

            // The client library waits as told and retries with the same request ids: 100
            // concurrent sends all succeed, each stored once.
            let ids = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for n in 0..<100 { group.addTask { try await client.send(token: alice, to: "bob", body: "lib \(n)") } }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            #expect(Set(ids).count == 100)
            let history = try await client.history(token: bob, with: "alice", pageSize: 1_000)
            #expect(history.messages.count == accepted.count + 100)
        }
    }
}

extension EdgeTests {
    /// A burst committed at once overflows a tiny subscription buffer even for a client that
    /// reads promptly: the node ends the stream with RESOURCE_EXHAUSTED, and the client library
    /// attaches again after its last event, so every message still arrives.
    @Test func aSubscriptionCutOffForFallingBehindResumesAndLosesNothing() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--subscription-buffer-events", "4"]
        try cluster.startAll()
        try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            var feed = client.subscribe(token: bob, acknowledge: false).makeAsyncIterator()
            guard case .attached? = try await feed.next() else { throw TestFailure("no attach") }
            let requests = RawChat.sends(300, clientID: "burst", token: alice, to: "bob", body: "burst")
            let replies = try await RawChat.sendStream(cluster.address(1), security: cluster.security, requests)
            let sent = Set(replies.map(\.messageID))
            var received = Set<UInt64>()
            var reconnects = 0
            let deadline = ContinuousClock.now + .seconds(60)
            while !sent.isSubset(of: received) && ContinuousClock.now < deadline {
                switch try await feed.next() {
                case let .message(message)?: received.insert(message.id)
                case .reconnecting?: reconnects += 1
                case nil: throw TestFailure("the feed ended")
                default: continue
                }
            }
            #expect(sent.isSubset(of: received))
            #expect(reconnects > 0, "the buffer of 4 never overflowed")
        }
    }

    /// Password checks past `--max-password-checks` are refused at once, not queued.
    @Test func passwordChecksPastTheLimitAreRefusedNotQueued() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--max-password-checks", "1", "--password-iterations", "400000"]
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(60)) { client in try await client.createAccount(name: "alice", password: "pw") }
        let outcomes = try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            return await withTaskGroup(of: String.self) { group in
                for n in 1...6 {
                    group.addTask {
                        do {
                            _ = try await chat.login(.with { $0.requestID = .with { $0.clientID = "l\(n)"; $0.sequence = 1 }; $0.name = "alice"; $0.password = "pw" })
                            return "ok"
                        } catch let error as RPCError {
                            return "\(error.code): \(error.message)"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { $0.append($1) }
            }
        }
        #expect(outcomes.contains("ok"))
        #expect(outcomes.contains("resourceExhausted: node 1 is checking 1 passwords already; retry in a second"), "\(outcomes)")
        #expect(outcomes.allSatisfy { $0 == "ok" || $0.hasPrefix("resourceExhausted") }, "\(outcomes)")
    }
}
