import Foundation
import Projections
import RateLimit
@testable import Replica
import Testing
@testable import Node

/// The bounds of a node's shared structures, in process: subscription buffers, streams per
/// user, rate limits.
@Suite struct EventHubLimitsTests {
    static func message(_ id: UInt64, to user: UInt64, bytes: Int = 10) -> ChatEvent {
        .messageSent(.with {
            $0.id = id
            $0.recipientID = user
            $0.recipient = "u\(user)"
            $0.sender = "s"
            $0.body = String(repeating: "x", count: bytes)
        })
    }

    @Test func aStreamThatFallsBehindByMoreThanItsEventsIsCutOffWithOverflow() async throws {
        var limits = EventHub.Limits()
        limits.events = 3
        let hub = EventHub(limits: limits)
        let stream = try hub.subscribe(id: 1, userID: 7, name: "u7", tokenHash: Self.session(1))
        for id in UInt64(1)...4 { hub.publish(index: id, event: Self.message(id, to: 7)) }
        var received: [UInt64] = []
        do {
            for try await delivery in stream { received.append(delivery.index) }
            Issue.record("the stream ended without an error")
        } catch EventHub.Closure.overflow(let reported) {
            #expect(reported.events == 3)
        }
        // The three that fitted are still delivered, in order, before the overflow.
        #expect(received == [1, 2, 3])
        #expect(hub.streams(of: 7) == 0)
    }

    @Test func theBufferIsBoundedInBytesAndWrittenEventsFreeIt() async throws {
        var limits = EventHub.Limits()
        limits.bytes = 3_000
        let hub = EventHub(limits: limits)
        let stream = try hub.subscribe(id: 1, userID: 7, name: "u7", tokenHash: Self.session(1))
        var iterator = stream.makeAsyncIterator()
        hub.publish(index: 1, event: Self.message(1, to: 7, bytes: 1_000))
        hub.publish(index: 2, event: Self.message(2, to: 7, bytes: 1_000))
        // Written: its bytes no longer count, so a third fits.
        let first = try #require(try await iterator.next())
        hub.written(id: 1, first)
        hub.publish(index: 3, event: Self.message(3, to: 7, bytes: 1_000))
        #expect(hub.streams(of: 7) == 1)
        // Two waiting (2 and 3): a fourth of 1,000 bytes passes 3,000.
        hub.publish(index: 4, event: Self.message(4, to: 7, bytes: 1_000))
        #expect(hub.streams(of: 7) == 0)
        #expect(try await iterator.next()?.index == 2)
        #expect(try await iterator.next()?.index == 3)
        await #expect(throws: EventHub.Closure.self) { _ = try await iterator.next() }
    }

    /// A stand-in token hash for stream `id`'s session.
    static func session(_ id: UInt64) -> [UInt8] { Array(repeating: UInt8(id), count: 32) }

    /// A session's end (logout, a deleted account, a login past the limit) ends that
    /// session's streams at once, and only those: another session of the same user reads on.
    @Test func aSessionsEndEndsItsStreamsAndNoOther() async throws {
        let hub = EventHub()
        let ended = try hub.subscribe(id: 1, userID: 7, name: "u7", tokenHash: Self.session(1))
        let sameSession = try hub.subscribe(id: 2, userID: 7, name: "u7", tokenHash: Self.session(1))
        let otherSession = try hub.subscribe(id: 3, userID: 7, name: "u7", tokenHash: Self.session(3))
        hub.publish(index: 1, event: Self.message(1, to: 7))
        hub.publish(index: 2, event: .sessionsEnded(tokenHashes: [Self.session(1)]))
        hub.publish(index: 3, event: Self.message(3, to: 7))
        for stream in [ended, sameSession] {
            var received: [UInt64] = []
            do {
                for try await delivery in stream { received.append(delivery.index) }
                Issue.record("the stream of an ended session ended without an error")
            } catch EventHub.Closure.sessionEnded {}
            #expect(received == [1])
        }
        #expect(hub.streams(of: 7) == 1)
        var iterator = otherSession.makeAsyncIterator()
        #expect(try await iterator.next()?.index == 1)
        #expect(try await iterator.next()?.index == 3)
    }

    @Test func aUserHasAtMostItsStreamsAndEventsReachOnlyTheirUser() async throws {
        var limits = EventHub.Limits()
        limits.streamsPerUser = 2
        let hub = EventHub(limits: limits)
        let a = try hub.subscribe(id: 1, userID: 7, name: "u7", tokenHash: Self.session(1))
        _ = try hub.subscribe(id: 2, userID: 7, name: "u7", tokenHash: Self.session(2))
        #expect(throws: EventHub.TooManyStreams.self) { _ = try hub.subscribe(id: 3, userID: 7, name: "u7", tokenHash: Self.session(3)) }
        let other = try hub.subscribe(id: 4, userID: 8, name: "u8", tokenHash: Self.session(4))
        hub.unsubscribe(id: 2)
        _ = try hub.subscribe(id: 5, userID: 7, name: "u7", tokenHash: Self.session(5))

        hub.publish(index: 1, event: Self.message(1, to: 7))
        hub.publish(index: 2, event: .messagesDeleted(ids: [1], participants: ["u7", "s"]))
        hub.publish(index: 3, event: .accountCreated(name: "new"))
        hub.closeAll(.shuttingDown)
        var forA: [UInt64] = []
        var forOther: [UInt64] = []
        do { for try await d in a { forA.append(d.index) } } catch {}
        do { for try await d in other { forOther.append(d.index) } } catch {}
        #expect(forA == [1, 2, 3])
        #expect(forOther == [3])
    }
}

@Suite struct RateLimiterTests {
    @Test func aSourceGetsItsBurstThenOneTokenPerIntervalAndOthersAreApart() {
        let limiter = RateLimiter(perMinute: 3)
        let start = ContinuousClock.now
        for _ in 0..<3 { #expect(limiter.take("a", now: start) == nil) }
        // Empty: the next token comes in 20 s (3 a minute).
        #expect(limiter.take("a", now: start) == .seconds(20))
        #expect(limiter.wouldAllow("a", now: start + .seconds(19)) != nil)
        #expect(limiter.take("b", now: start) == nil)
        #expect(limiter.take("a", now: start + .seconds(20)) == nil)
        #expect(limiter.take("a", now: start + .seconds(20)) != nil)
    }

    @Test func aFullTableForgetsRefilledSourcesThenSharesOneBucket() {
        let limiter = RateLimiter(perMinute: 1, capacity: 2)
        let start = ContinuousClock.now
        #expect(limiter.take("a", now: start) == nil)
        #expect(limiter.take("b", now: start) == nil)
        // Full of empty buckets: "c" and "d" share the one extra bucket.
        #expect(limiter.take("c", now: start) == nil)
        #expect(limiter.take("d", now: start) != nil)
        // A minute on, every bucket has refilled and is forgotten to make room.
        #expect(limiter.take("e", now: start + .seconds(61)) == nil)
    }

    @Test func theSourceIsTheAddressWithoutItsPort() {
        #expect(RateLimiter.source(of: "ipv4:127.0.0.1:5000") == "ipv4:127.0.0.1")
        #expect(RateLimiter.source(of: "ipv6:[::1]:443") == "ipv6:[::1]")
        #expect(RateLimiter.source(of: "in-process:27182") == "in-process:27182")
    }
}

/// A detach the busy leader refused is proposed again until it is made; one that cannot be
/// made for good (leadership moved) is left to the new leader's detach-all.
@Suite struct DetachRetryTests {
    @Test func aBusyLeadersRefusalsAreRetriedUntilTheDetachIsMade() async {
        var refusals: [ReplicaError] = [.overloaded(proposals: 1, bytes: 1), .timedOut, .overloaded(proposals: 1, bytes: 1)]
        var pauses: [Duration] = []
        let outcome = await DetachRetry.run(propose: { () async throws(ReplicaError) in
            if !refusals.isEmpty { throw refusals.removeFirst() }
        }, pause: { pauses.append($0) })
        #expect(outcome.attempts == 4 && outcome.done)
        #expect(pauses == [.milliseconds(100), .milliseconds(200), .milliseconds(400)])
    }

    @Test func aDetachIsGivenUpWhenLeadershipMovesOrAfterItsAttempts() async {
        let moved = await DetachRetry.run(propose: { () async throws(ReplicaError) in throw .leadershipLost(leader: 2) }, pause: { _ in })
        #expect(moved.attempts == 1 && !moved.done)
        var tries = 0
        let busy = await DetachRetry.run(attempts: 5, propose: { () async throws(ReplicaError) in
            tries += 1
            throw .overloaded(proposals: 1, bytes: 1)
        }, pause: { _ in })
        #expect(busy.attempts == 5 && !busy.done && tries == 5)
    }
}
