import Foundation
import Testing
@testable import Projections

@Suite struct AccountTests {
    @Test func createAndCheckCredentials() throws {
        let h = try Harness()
        #expect(try h.createAccount("alice", password: "pw1").rejection == nil)
        #expect(try h.state.userExists("alice"))
        #expect(try h.state.checkCredentials(name: "alice", password: "pw1")?.name == "alice")
        #expect(try h.state.checkCredentials(name: "alice", password: "wrong") == nil)
        #expect(try h.state.checkCredentials(name: "nobody", password: "pw1") == nil)
    }

    @Test func duplicateNameIsRejected() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        #expect(try h.createAccount("alice").rejection == .alreadyExists)
    }

    @Test(arguments: ["", String(repeating: "a", count: 33), "has space", "émile", "semi;colon", "a/b"])
    func badNamesAreRejected(name: String) throws {
        let h = try Harness()
        #expect(try h.createAccount(name).rejection == .invalidArgument)
        #expect(try h.state.lastApplied() == 1)
    }

    @Test func goodNamesAreAccepted() throws {
        let h = try Harness()
        for name in ["a", "A.b-c_9", String(repeating: "z", count: 32)] {
            #expect(try h.createAccount(name).rejection == nil, "\(name)")
        }
    }

    @Test func loginReturnsUnreadCountAndUnknownUserIsNotFound() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice")
        _ = try h.send(alice, to: "bob", "one")
        _ = try h.send(alice, to: "bob", "two")
        var open = OpenSession()
        open.name = "bob"
        open.tokenHash = Data(Credentials.tokenHash(Array("bob-token".utf8)))
        #expect(try h.run(.openSession(open)) == .success(2))
        open.name = "carol"
        open.tokenHash = Data(Credentials.tokenHash(Array("carol-token".utf8)))
        #expect(try h.run(.openSession(open)).rejection == .notFound)
    }

    @Test func logoutEndsTheSession() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let token = try h.login("alice")
        #expect(try h.state.session(tokenHash: Array(token))?.name == "alice")
        var close = CloseSession()
        close.tokenHash = token
        let closed = try h.runApplied(.closeSession(close))
        #expect(closed.outcome == .success(0))
        #expect(closed.events == [.sessionsEnded(tokenHashes: [Array(token)])], "its streams end at once")
        #expect(try h.state.session(tokenHash: Array(token)) == nil)
        #expect(try h.send(token, to: "alice", "hi").rejection == .unauthenticated)
        #expect(try h.run(.closeSession(close)).rejection == .unauthenticated)
    }

    @Test func deleteAccountRemovesInboxSessionsAndFreesTheName() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice")
        let bob = try h.login("bob")
        let toBob = try h.send(alice, to: "bob", "for bob").get()
        let toAlice = try h.send(bob, to: "alice", "from bob").get()
        _ = try h.attach(bob, subscription: 9)
        #expect(try h.state.isOnline("bob"))

        let applied = try h.runApplied(.deleteAccount({ var c = DeleteAccount(); c.tokenHash = bob; return c }()))
        #expect(applied.outcome == .success(1))
        #expect(applied.events == [.accountDeleted(name: "bob"), .sessionsEnded(tokenHashes: [Array(bob)])], "his streams end with his sessions")
        #expect(try h.state.userExists("bob") == false)
        #expect(try h.state.message(id: toBob) == nil, "bob's inbox goes")
        #expect(try h.state.message(id: toAlice)?.sender == "bob", "what bob sent stays, under his name")
        #expect(try h.state.session(tokenHash: Array(bob)) == nil)
        #expect(try h.send(bob, to: "alice", "ghost").rejection == .unauthenticated)
        #expect(try h.state.isOnline("bob") == false)

        // The name is free again, and the new bob is someone else.
        #expect(try h.createAccount("bob").rejection == nil)
        let newBob = try h.login("bob")
        #expect(try h.state.undelivered(userID: h.userID("bob"), limit: 10).isEmpty)
        #expect(try h.send(newBob, to: "alice", "new bob").rejection == nil)
        #expect(try h.state.undelivered(userID: h.userID("alice"), limit: 10).map(\.body) == ["from bob", "new bob"])
    }
}

@Suite struct MessageTests {
    @Test func pagesAreBoundedInBytesAndTheTokenContinuesWhereTheyRanOut() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice")
        let body = String(repeating: "b", count: Validation.maxBodyBytes - 1_024)
        var sent: [UInt64] = []
        for _ in 0..<40 { sent.append(try h.send(alice, to: "bob", body).get()) }
        let (aliceID, bobID) = (try h.userID("alice"), try h.userID("bob"))

        var pages: [[UInt64]] = []
        var token: String?
        repeat {
            let page = try h.state.conversation(between: aliceID, and: bobID, limit: 1_000, pageToken: token, newestFirst: false)
            pages.append(page.items.map(\.id))
            token = page.nextPageToken
        } while token != nil
        // About 1 MiB a page (16 bodies of 64 KiB), every message exactly once, in order.
        #expect(pages.map(\.count) == [16, 16, 8])
        #expect(pages.flatMap { $0 } == sent)
        // Undelivered reads stop at the same bound.
        #expect(try h.state.undelivered(userID: bobID, limit: 1_000).count == 16)
    }

    /// alice and bob with sessions.
    func pair() throws -> (Harness, alice: Data, bob: Data) {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        return (h, try h.login("alice"), try h.login("bob"))
    }

    @Test func sendAssignsTheLogIndexAndQueuesForTheRecipient() throws {
        let (h, alice, _) = try pair()
        let applied = try h.runApplied(.sendMessage({ var c = SendMessage(); c.tokenHash = alice; c.recipient = "bob"; c.body = "hi"; return c }()))
        #expect(applied.outcome == .success(applied.index))
        guard case let .messageSent(message)? = applied.events.first else { Issue.record("no event"); return }
        #expect(message.id == applied.index)
        #expect(message.sender == "alice" && message.recipient == "bob" && message.body == "hi")
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 1)
        #expect(try h.state.unreadCount(userID: h.userID("alice")) == 0)
    }

    @Test func sendErrors() throws {
        let (h, alice, _) = try pair()
        #expect(try h.send(alice, to: "carol", "hi").rejection == .notFound)
        #expect(try h.send(alice, to: "bob", "").rejection == .invalidArgument)
        #expect(try h.send(alice, to: "bob", String(repeating: "x", count: 64 * 1024 + 1)).rejection == .invalidArgument)
        #expect(try h.send(alice, to: "bob", String(repeating: "x", count: 64 * 1024)).rejection == nil)
        #expect(try h.send(Data(repeating: 1, count: 32), to: "bob", "forged").rejection == .unauthenticated)
        #expect(try h.send(Data([1, 2]), to: "bob", "short").rejection == .unauthenticated)
    }

    @Test func readOldestFirstAndAcknowledge() throws {
        let (h, alice, bob) = try pair()
        let ids = try (1...5).map { try h.send(alice, to: "bob", "m\($0)").get() }
        let bobID = try h.userID("bob")
        #expect(try h.state.undelivered(userID: bobID, limit: 2).map(\.id) == Array(ids[0..<2]))
        #expect(try h.acknowledge(bob, Array(ids[0..<2])) == .success(2))
        #expect(try h.acknowledge(bob, Array(ids[0..<2])) == .success(0), "acknowledging twice changes nothing")
        #expect(try h.state.undelivered(userID: bobID, limit: 10).map(\.id) == Array(ids[2...]))
        #expect(try h.state.unreadCount(userID: bobID) == 3)
        #expect(try h.state.message(id: ids[0])?.delivered == true)
        // alice cannot mark bob's messages delivered.
        #expect(try h.acknowledge(alice, [ids[3]]).rejection == .permissionDenied)
        #expect(try h.state.unreadCount(userID: bobID) == 3)
    }

    @Test func deleteRemovesForBothSidesAndOnlyParticipantsMay() throws {
        let h = try Harness()
        for name in ["alice", "bob", "eve"] { _ = try h.createAccount(name) }
        let alice = try h.login("alice"), bob = try h.login("bob"), eve = try h.login("eve")
        let one = try h.send(alice, to: "bob", "one").get()
        let two = try h.send(bob, to: "alice", "two").get()
        #expect(try h.delete(eve, [one]).rejection == .permissionDenied)
        #expect(try h.delete(alice, [one, 999_999]).rejection == .notFound)
        #expect(try h.state.message(id: one) != nil, "a rejected delete removes nothing")
        let applied = try h.runApplied(.deleteMessages({ var c = DeleteMessages(); c.tokenHash = bob; c.messageIds = [one, two]; return c }()))
        #expect(applied.outcome == .success(2))
        #expect(applied.events == [.messagesDeleted(ids: [one, two], participants: ["alice", "bob"])])
        #expect(try h.state.message(id: one) == nil)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 0)
        #expect(try h.state.conversation(between: h.userID("alice"), and: h.userID("bob"), limit: 10).items.isEmpty)
        #expect(try h.delete(bob, []).rejection == .invalidArgument)
    }

    @Test(arguments: ["18446744073709551615", "4611686018427387905", "+5", "-1", "007", "0x10", " 5", "5 ", "", "1e3", "٣"])
    func conversationPageTokensAreOnlyThoseTheServiceWrites(token: String) throws {
        let (h, alice, _) = try pair()
        _ = try h.send(alice, to: "bob", "m").get()
        let a = try h.userID("alice"), b = try h.userID("bob")
        for newestFirst in [true, false] {
            #expect(throws: Rejection(.invalidArgument, "the page token '\(token)' is not one this service issued")) {
                try h.state.conversation(between: a, and: b, limit: 3, pageToken: token, newestFirst: newestFirst)
            }
        }
        // The largest id a node can issue pages to the end, both ways.
        let last = "\(Validation.maxMessageID)"
        #expect(try h.state.conversation(between: a, and: b, limit: 3, pageToken: last, newestFirst: false).items.isEmpty)
        #expect(try h.state.conversation(between: a, and: b, limit: 3, pageToken: last).items.count == 1)
    }

    @Test(arguments: ["a*", "", String(repeating: "n", count: 33), "bad name"])
    func accountPageTokensAreAccountNames(token: String) throws {
        let (h, _, _) = try pair()
        #expect(throws: Rejection(.invalidArgument, "the page token '\(token)' is not one this service issued")) {
            try h.state.accounts(matching: "*", pageSize: 10, pageToken: token)
        }
    }

    @Test func conversationPagesBothWaysWithoutSideEffects() throws {
        let (h, alice, bob) = try pair()
        var ids: [UInt64] = []
        for i in 0..<7 {
            ids.append(try h.send(i % 2 == 0 ? alice : bob, to: i % 2 == 0 ? "bob" : "alice", "m\(i)").get())
        }
        let a = try h.userID("alice"), b = try h.userID("bob")
        let first = try h.state.conversation(between: b, and: a, limit: 3)
        #expect(first.items.map(\.id) == [ids[6], ids[5], ids[4]])
        let second = try h.state.conversation(between: a, and: b, limit: 3, pageToken: first.nextPageToken)
        #expect(second.items.map(\.id) == [ids[3], ids[2], ids[1]])
        let third = try h.state.conversation(between: a, and: b, limit: 3, pageToken: second.nextPageToken)
        #expect(third.items.map(\.id) == [ids[0]])
        #expect(third.nextPageToken == nil)
        let forward = try h.state.conversation(between: a, and: b, limit: 4, newestFirst: false)
        #expect(forward.items.map(\.id) == Array(ids[0..<4]))
        let rest = try h.state.conversation(between: a, and: b, limit: 4, pageToken: forward.nextPageToken, newestFirst: false)
        #expect(rest.items.map(\.id) == Array(ids[4...]))
        #expect(try h.state.unreadCount(userID: b) == 4, "history is no acknowledgement")
        #expect(throws: Rejection.self) { try h.state.conversation(between: a, and: b, limit: 3, pageToken: "x") }
    }
}

@Suite struct HostileEntryTests {
    /// Found by the request fuzzer: a client id longer than LMDB's key limit made the
    /// exactly-once lookup fail the whole batch, which stops a node. No node proposes one; an
    /// entry that carries one is refused and the batch goes on.
    @Test func anOverlongClientIDIsRefusedNotAStorageFailure() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let outcome = try h.run(.detachAll(DetachAll()), client: String(repeating: "c", count: 600), sequence: 1)
        #expect(outcome == .failure(Rejection(.invalidArgument, "the client id of entry 2 is longer than 128 bytes")))
        #expect(try h.createAccount("bob").get() == 3, "later entries apply as usual")
        #expect(throws: Rejection(.invalidArgument, "every write needs a request_id: a client_id (1–128 bytes) and a sequence from 1 to 2^62")) {
            try h.state.clientOutcome(clientID: "")
        }
    }
}

@Suite struct ListingAndPresenceTests {
    @Test func globPatternsMatchAsShellsDo() {
        #expect(Glob("*").matches("anything"))
        #expect(Glob("a*").matches("alice") && !Glob("a*").matches("bob"))
        #expect(Glob("?ob").matches("bob") && !Glob("?ob").matches("boob"))
        #expect(Glob("*li*e").matches("alice") && Glob("*li*e").matches("lie"))
        #expect(!Glob("a*c").matches("abcd"))
        #expect(Glob("").matches("") && !Glob("").matches("a"))
        #expect(Glob("al*").literalPrefix == Array("al".utf8))
    }

    @Test func listingPagesInNameOrderWithOnlineFlag() throws {
        let h = try Harness()
        let names = ["ann", "anna", "annie", "bob", "anton", "anya", "carl"]
        for name in names { _ = try h.createAccount(name) }
        let anya = try h.login("anya")
        _ = try h.attach(anya, subscription: 42)

        var seen: [AccountSummary] = []
        var token: String?
        repeat {
            let page = try h.state.accounts(matching: "an*", pageSize: 2, pageToken: token)
            #expect(page.items.count <= 2)
            seen += page.items
            token = page.nextPageToken
        } while token != nil
        #expect(seen.map(\.name) == ["ann", "anna", "annie", "anton", "anya"])
        #expect(seen.filter(\.online).map(\.name) == ["anya"])
        #expect(try h.state.accounts(matching: "*n", pageSize: 10).items.map(\.name) == ["ann", "anton"])
        #expect(try h.state.accounts(matching: "?o?", pageSize: 10).items.map(\.name) == ["bob"])
        #expect(throws: Rejection.self) { try h.state.accounts(matching: "a[b]", pageSize: 10) }
        #expect(throws: Rejection.self) { try h.state.accounts(matching: "*", pageSize: 0) }
    }

    @Test func attachDetachAndDetachAll() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice"), bob = try h.login("bob")
        _ = try h.attach(alice, subscription: 1)
        _ = try h.attach(alice, subscription: 2)
        _ = try h.attach(bob, subscription: 3)
        var detach = DetachClient()
        detach.subscriptionID = 1
        #expect(try h.run(.detach(detach)) == .success(1))
        #expect(try h.state.isOnline("alice"), "still one stream attached")
        #expect(try h.run(.detachAll(DetachAll())) == .success(2))
        #expect(try h.state.isOnline("alice") == false)
        #expect(try h.state.isOnline("bob") == false)
        #expect(try h.attach(Data(repeating: 7, count: 32), subscription: 5).rejection == .unauthenticated)
    }

    /// Presence is announced on a user's first stream and after its last, not in between.
    @Test func presenceChangesOnFirstAndLastStreamOnly() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let alice = try h.login("alice")
        func attach(_ id: UInt64) throws -> [ChatEvent] {
            try h.runApplied(.attach(.with { $0.tokenHash = alice; $0.subscriptionID = id })).events
        }
        func detach(_ id: UInt64) throws -> [ChatEvent] {
            try h.runApplied(.detach(.with { $0.subscriptionID = id })).events
        }
        #expect(try attach(1) == [.presence(name: "alice", online: true)])
        #expect(try attach(2) == [])
        #expect(try attach(2) == [], "attaching a stream again changes nothing")
        #expect(try detach(1) == [])
        #expect(try detach(7) == [], "an unknown stream")
        #expect(try detach(2) == [.presence(name: "alice", online: false)])
        #expect(try detach(2) == [])
        #expect(try attach(3) == [.presence(name: "alice", online: true)])
        _ = try h.createAccount("bob")
        let bob = try h.login("bob")
        _ = try h.runApplied(.attach(.with { $0.tokenHash = bob; $0.subscriptionID = 4 }))
        // A new leader takes everyone offline and says so: a client that is gone for good
        // must not stay online to those who watch it (those still there attach again).
        #expect(try h.runApplied(.detachAll(DetachAll())).events == [.presence(name: "alice", online: false), .presence(name: "bob", online: false)])
        #expect(try h.runApplied(.detachAll(DetachAll())).events == [])
    }
}

@Suite struct ReplayTests {
    /// A chat state with alice and bob, and alice's send to bob.
    static func sendSetup() throws -> (Harness, SendMessage) {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        var send = SendMessage()
        send.tokenHash = try h.login("alice")
        send.recipient = "bob"
        send.body = "exactly once"
        return (h, send)
    }

    @Test func duplicateClientSequenceAppliesOnceAndAnswersTheSame() throws {
        let (h, send) = try Self.sendSetup()
        let first = try h.runApplied(.sendMessage(send), client: "c1", sequence: 1)
        let retry = try h.runApplied(.sendMessage(send), client: "c1", sequence: 1)
        #expect(retry.duplicate)
        #expect(retry.outcome == first.outcome)
        #expect(retry.events.isEmpty)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 1)
        #expect(try h.run(.sendMessage(send), client: "c1", sequence: 2).rejection == nil)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 2)
    }

    @Test func pipelinedRequestsArriveInAnyOrderAndEachRetryGetsItsOwnResult() throws {
        let (h, send) = try Self.sendSetup()
        // 3 overtakes 2 (two callers on one client id); both are new.
        let third = try h.runApplied(.sendMessage(send), client: "p", sequence: 3, firstOutstanding: 2)
        let second = try h.runApplied(.sendMessage(send), client: "p", sequence: 2, firstOutstanding: 2)
        #expect(!third.duplicate && !second.duplicate)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 2)
        // Retries of either return their own message id, not the newest one.
        let retrySecond = try h.runApplied(.sendMessage(send), client: "p", sequence: 2, firstOutstanding: 2)
        let retryThird = try h.runApplied(.sendMessage(send), client: "p", sequence: 3, firstOutstanding: 2)
        #expect(retrySecond.duplicate && retrySecond.outcome == second.outcome)
        #expect(retryThird.duplicate && retryThird.outcome == third.outcome)
        #expect(second.outcome != third.outcome)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 2)
    }

    @Test func theClientsLowestOutstandingRequestMovesTheWindow() throws {
        let (h, send) = try Self.sendSetup()
        for sequence in UInt64(1)...3 {
            _ = try h.run(.sendMessage(send), client: "w", sequence: sequence, firstOutstanding: 1)
        }
        // The newest result is in the client's row; the two before it are kept apart.
        #expect(try h.state.clientWindow(clientID: "w") == .init(floor: 1, kept: 2))
        // Request 4 says everything before it is answered: 1 to 3 are forgotten.
        _ = try h.run(.sendMessage(send), client: "w", sequence: 4, firstOutstanding: 4)
        #expect(try h.state.clientWindow(clientID: "w") == .init(floor: 4, kept: 0))
        let late = try h.runApplied(.sendMessage(send), client: "w", sequence: 2, firstOutstanding: 2)
        #expect(late.duplicate)
        #expect(late.outcome.rejection == .failedPrecondition)
        #expect(late.outcome.rejectionMessage == "request 2 of client w is below its exactly-once window (results are kept from request 4 on): it may have been applied; check before sending it again")
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 4)
    }

    @Test func aClientThatNeverSaysKeepsItsLatestResultsOnly() throws {
        let (h, send) = try Self.sendSetup()
        // Twice the window: the oldest half goes at once, the latest 1,024 stay.
        let count = UInt64(2 * ExactlyOnce.maxKept) + 1
        var ids: [UInt64: UInt64] = [:]
        for sequence in 1...count {
            ids[sequence] = try h.run(.sendMessage(send), client: "quiet", sequence: sequence).get()
        }
        let floor = count - UInt64(ExactlyOnce.maxKept) + 1
        #expect(try h.state.clientWindow(clientID: "quiet") == .init(floor: floor, kept: ExactlyOnce.maxKept - 1))
        #expect(try h.run(.sendMessage(send), client: "quiet", sequence: floor - 1).rejection == .failedPrecondition)
        let kept = try h.runApplied(.sendMessage(send), client: "quiet", sequence: floor)
        #expect(kept.duplicate && kept.outcome == .success(ids[floor]!))
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == count)
    }

    @Test func aRetriedLoginOpensTheSessionOfItsOwnToken() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        // The answer to the first attempt was lost; the retry has the same request id and a
        // token of its own. Both sessions open: the one the client receives works.
        let first = Data(Credentials.tokenHash(Array("first".utf8)))
        let retry = Data(Credentials.tokenHash(Array("retry".utf8)))
        let a = try h.runApplied(.openSession(.with { $0.name = "alice"; $0.tokenHash = first }), client: "l", sequence: 1, firstOutstanding: 1)
        let b = try h.runApplied(.openSession(.with { $0.name = "alice"; $0.tokenHash = retry }), client: "l", sequence: 1, firstOutstanding: 1)
        #expect(!a.duplicate && !b.duplicate)
        #expect(try h.state.session(tokenHash: Array(first))?.name == "alice")
        #expect(try h.state.session(tokenHash: Array(retry))?.name == "alice")
    }

    @Test func aSessionEndsAfterItsIdleTimeByTheLogsClockAndUseKeepsItAlive() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice", idleMs: 120_000)
        // Used every 100 s: each use (kept to the minute) moves the end further.
        for _ in 0..<5 {
            h.elapsedMs += 100_000
            #expect(try h.send(alice, to: "bob", "still here").rejection == nil)
        }
        // Then 121 s of silence: ended, refused with its own words.
        h.elapsedMs += 121_000
        let refused = try h.send(alice, to: "bob", "too late")
        #expect(refused.rejection == .unauthenticated)
        #expect(refused.rejectionMessage == "the session has expired; log in again")
        #expect(try h.state.session(tokenHash: Array(alice)) != nil, "refused at once, removed later")
        // The next login removes ended sessions.
        _ = try h.login("bob")
        #expect(try h.state.session(tokenHash: Array(alice)) == nil)
    }

    @Test func aSessionEndsAtItsLifetimeHoweverBusy() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice", idleMs: 120_000, lifetimeMs: 300_000)
        for _ in 0..<4 {
            h.elapsedMs += 70_000
            #expect(try h.send(alice, to: "bob", "busy").rejection == nil)
        }
        h.elapsedMs += 30_000
        #expect(try h.send(alice, to: "bob", "past the lifetime").rejectionMessage == "the session has expired; log in again")
    }

    @Test func theLogsClockNeverStepsBack() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice", idleMs: 60_000)
        h.elapsedMs += 61_000
        // A later entry from a leader whose clock is behind: the session stays ended.
        _ = try h.send(alice, to: "bob", "ended")
        h.elapsedMs -= 61_000
        #expect(try h.send(alice, to: "bob", "from a slow clock").rejectionMessage == "the session has expired; log in again")
    }

    @Test func loginsPastTheCapEndTheOldestSessions() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        var tokens: [Data] = []
        for _ in 0...Validation.maxSessionsPerUser { tokens.append(try h.login("alice")) }
        #expect(try h.state.session(tokenHash: Array(tokens[0])) == nil)
        for token in tokens.dropFirst() { #expect(try h.state.session(tokenHash: Array(token)) != nil) }
    }

    @Test func aClientSilentForADayIsForgottenWhenANewOneArrives() throws {
        let (h, send) = try Self.sendSetup()
        for sequence in UInt64(1)...3 { _ = try h.run(.sendMessage(send), client: "old", sequence: sequence) }
        _ = try h.run(.sendMessage(send), client: "recent", sequence: 1)
        h.elapsedMs += ExactlyOnce.idleExpiryMs + 120_000
        _ = try h.run(.sendMessage(send), client: "recent", sequence: 2)
        // A new client arrives a day later: the silent one goes, with its results.
        _ = try h.run(.sendMessage(send), client: "new", sequence: 1)
        #expect(try h.state.clientWindow(clientID: "old") == nil)
        #expect(try h.state.clientWindow(clientID: "recent") == .init(floor: 0, kept: 1))
        #expect(try h.state.clientWindow(clientID: "new") == .init(floor: 0, kept: 0))
        #expect(try h.state.environment.read { try $0.count(h.state.tables.results) } == 1)
    }

    /// What a node answers a retry with before it looks at the session: the outcome the log
    /// recorded for that request, newest or kept in the window, success or refusal; nothing
    /// for a request it never saw or has forgotten.
    @Test func theRecordedOutcomeOfARequestIsFoundWhateverItsSessionBecame() throws {
        let (h, send) = try Self.sendSetup()
        let first = try h.run(.sendMessage(send), client: "c", sequence: 1, firstOutstanding: 1)
        let second = try h.run(.sendMessage(send), client: "c", sequence: 2, firstOutstanding: 1)
        _ = try h.run(.closeSession(.with { $0.tokenHash = send.tokenHash }))
        let refused = try h.run(.sendMessage(send), client: "c", sequence: 3, firstOutstanding: 1)
        #expect(refused.rejection == .unauthenticated)
        #expect(try h.state.recordedOutcome(clientID: "c", sequence: 1) == first)
        #expect(try h.state.recordedOutcome(clientID: "c", sequence: 2) == second)
        #expect(try h.state.recordedOutcome(clientID: "c", sequence: 3) == refused)
        #expect(try h.state.recordedOutcome(clientID: "c", sequence: 4) == nil)
        #expect(try h.state.recordedOutcome(clientID: "other", sequence: 1) == nil)
        _ = try h.run(.sendMessage(send), client: "c", sequence: 5, firstOutstanding: 5)
        #expect(try h.state.recordedOutcome(clientID: "c", sequence: 1) == nil, "below the window: forgotten")
        #expect(try h.state.recordedOutcome(clientID: String(repeating: "x", count: 500), sequence: 1) == nil)
    }

    @Test func aClientWithOneRequestInFlightWritesNoResultRows() throws {
        let (h, send) = try Self.sendSetup()
        for sequence in UInt64(1)...50 {
            _ = try h.run(.sendMessage(send), client: "lane", sequence: sequence, firstOutstanding: sequence)
        }
        #expect(try h.state.clientWindow(clientID: "lane") == .init(floor: 50, kept: 0))
        #expect(try h.state.environment.read { try $0.count(h.state.tables.results) } == 0)
        let retry = try h.runApplied(.sendMessage(send), client: "lane", sequence: 50, firstOutstanding: 50)
        #expect(retry.duplicate)
    }

    @Test func versionOneCommandsKeepTheNewestOnlyRule() throws {
        let (h, send) = try Self.sendSetup()
        _ = try h.runApplied(.sendMessage(send), client: "old", sequence: 5, version: 1)
        let older = try h.runApplied(.sendMessage(send), client: "old", sequence: 4, version: 1)
        #expect(older.duplicate)
        #expect(older.outcome.rejectionMessage == "request 4 of client old is older than request 5, already applied")
        #expect(try h.state.clientWindow(clientID: "old") == .init(floor: 0, kept: 0))
    }

    @Test func entriesAtOrBelowLastAppliedAreIgnored() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let before = try h.state.digest()
        var c = CreateAccount()
        c.name = "mallory"
        c.salt = Data([1])
        c.iterations = 1
        c.passwordHash = Data([1])
        let result = try h.state.apply([CommittedEntry(index: 1, command: try Command.with { $0.version = 1; $0.kind = .createAccount(c) }.serializedBytes())])
        #expect(result.isEmpty)
        #expect(try h.state.digest() == before)
        #expect(try h.state.userExists("mallory") == false)
    }

    @Test func noPlaintextSecretsInTheTables() throws {
        let h = try Harness()
        _ = try h.createAccount("alice", password: "hunter2-plaintext")
        _ = try h.login("alice", token: "session-token-plaintext")
        for table in ChatState.tableNames {
            try h.state.forEachRow(in: table) { key, value in
                for secret in ["hunter2-plaintext", "session-token-plaintext"] {
                    let needle = Array(secret.utf8)
                    #expect(!contains(key, needle) && !contains(value, needle), "\(secret) stored in \(table)")
                }
            }
        }
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<($0 + needle.count)]) == needle }
    }
}

/// A storage failure while applying is not a command's outcome: the batch is not written and
/// the error reaches the caller (the node stops), so a replica never records a refusal that
/// the others did not.
@Suite struct StorageFailureTests {
    @Test func aFullMapAbortsTheBatchInsteadOfRecordingARefusal() throws {
        let directory = NSTemporaryDirectory() + "chorus-full-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = try ChatState(directory: directory, map: MapLimits(initial: 1 << 20, maximum: 1 << 20))
        var index: UInt64 = 0
        func command(_ kind: Command.OneOf_Kind) throws -> CommittedEntry {
            index += 1
            var command = Command()
            command.version = ChatState.commandVersion
            command.timestampMs = 1_700_000_000_000
            command.kind = kind
            return CommittedEntry(index: index, command: try command.serializedBytes())
        }
        let hash = Data(Credentials.tokenHash(Array("token".utf8)))
        _ = try state.apply([try command(.createAccount(.with { $0.name = "alice"; $0.passwordHash = Data([1]); $0.salt = Data([2]); $0.iterations = 1 }))])
        _ = try state.apply([try command(.createAccount(.with { $0.name = "bob"; $0.passwordHash = Data([1]); $0.salt = Data([2]); $0.iterations = 1 }))])
        _ = try state.apply([try command(.openSession(.with { $0.name = "alice"; $0.tokenHash = hash }))])
        let body = String(repeating: "x", count: 60_000)
        var failed = false
        for _ in 0..<100 {
            let before = try state.lastApplied()
            do {
                let applied = try state.apply([try command(.sendMessage(.with { $0.tokenHash = hash; $0.recipient = "bob"; $0.body = body }))])
                #expect(applied.first?.outcome.rejection == nil, "a send either succeeds or the batch fails; it is never refused for storage")
            } catch {
                #expect(try state.lastApplied() == before, "nothing of the failed batch was written")
                failed = true
                break
            }
        }
        #expect(failed, "a 1 MiB map fills up")
    }
}
