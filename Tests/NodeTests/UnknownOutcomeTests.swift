import API
import GRPCCore
import Synchronization
import Testing
@testable import Client

/// Once an attempt of a write may have reached a leader, the client library never reports the
/// write as failed: it retries under the same id until an answer comes, or says the outcome
/// is unknown. Each case plays a scripted sequence of attempt outcomes through the library's
/// retry loop.
@Suite struct UnknownOutcomeTests {
    struct Lost: Error {}

    static let leadershipChanged = RPCError(code: .unavailable, message: "leadership changed while the request waited; retry with the same request id")
    static let notLeader = RPCError(code: .unavailable, message: "node 2 is not the leader", metadata: [MetadataKeys.notProposed: "1"])
    static let overloadedFor60s = RPCError(code: .resourceExhausted, message: "too many", metadata: [MetadataKeys.retryAfterMs: "60000"])
    static let unimplemented = RPCError(code: .unimplemented, message: "Requested RPC isn't implemented by this server.")
    static let streamFull = RPCError(code: .resourceExhausted, message: "10000 send requests already wait", metadata: [MetadataKeys.retryAfterMs: "20"])

    /// Plays `script` (one entry per attempt, the last repeated) and returns what the caller saw.
    /// `deadline` is short where the case runs until it passes, and long where the case must end
    /// before it whatever the machine's load.
    static func play(write: Bool = true, deadline: Duration = .milliseconds(400), _ script: [any Error]) async throws -> Result<Int, ChorusError> {
        let client = try ChorusClient(endpoints: ["127.0.0.1:1", "127.0.0.1:2"], deadline: deadline, security: .plaintext)
        let attempts = Mutex(0)
        do {
            let value = try await client.withLeader(write: write, node: { _ -> Int in
                let n = attempts.withLock { count in
                    defer { count += 1 }
                    return count
                }
                throw script[min(n, script.count - 1)]
            })
            return .success(value)
        } catch let error as ChorusError {
            return .failure(error)
        }
    }

    @Test func aBusyRetryAfterALostAnswerIsReportedUnknownNotFailed() async throws {
        let outcome = try await Self.play(deadline: .seconds(30), [Self.leadershipChanged, Self.overloadedFor60s])
        guard case let .failure(.outcomeUnknown(message)) = outcome else { Issue.record("\(outcome)"); return }
        #expect(message.contains("may have been applied"))
    }

    @Test func aBusyNodeBeforeAnythingReachedALeaderIsBusy() async throws {
        let outcome = try await Self.play(deadline: .seconds(30), [Self.notLeader, Self.overloadedFor60s])
        guard case .failure(.busy) = outcome else { Issue.record("\(outcome)"); return }
    }

    @Test func aConnectionLostMidCallThenNoLeaderUntilTheDeadlineIsUnknown() async throws {
        let outcome = try await Self.play([Lost(), Self.notLeader])
        guard case .failure(.outcomeUnknown) = outcome else { Issue.record("\(outcome)"); return }
    }

    @Test func noLeaderAtAllUntilTheDeadlineIsUnavailable() async throws {
        let outcome = try await Self.play([Self.notLeader])
        guard case .failure(.clusterUnavailable) = outcome else { Issue.record("\(outcome)"); return }
    }

    /// A node of an older release does not know a new call (a rolling upgrade): another node
    /// is asked, and the leader's verdict is what the caller sees.
    @Test func aNodeThatDoesNotKnowTheCallIsPassedOver() async throws {
        let tooEarly = RPCError(code: .failedPrecondition, message: "editing a message needs cluster version 2")
        let outcome = try await Self.play(deadline: .seconds(30), [Self.unimplemented, tooEarly])
        guard case let .failure(.failedPrecondition(message)) = outcome else { Issue.record("\(outcome)"); return }
        #expect(message == "editing a message needs cluster version 2")
    }

    @Test func onlyNodesThatDoNotKnowTheCallIsAFailedPrecondition() async throws {
        let outcome = try await Self.play([Self.unimplemented])
        guard case let .failure(.failedPrecondition(message)) = outcome else { Issue.record("\(outcome)"); return }
        #expect(message.hasPrefix("no node that knows this call answered within 0.4 seconds (the node at 127.0.0.1:"), "\(message)")
        #expect(message.hasSuffix("runs an older release, which does not know this call): the cluster is being upgraded; every node must run this release first"), "\(message)")
    }

    @Test func aReadIsNeverUnknown() async throws {
        let outcome = try await Self.play(write: false, [Self.leadershipChanged])
        guard case .failure(.clusterUnavailable) = outcome else { Issue.record("\(outcome)"); return }
    }

    /// The client's own stream over its bound is waited out like a busy node, not reported
    /// as invalid input.
    @Test func aFullStreamIsWaitedOut() async throws {
        let client = try ChorusClient(endpoints: ["127.0.0.1:1"], deadline: .seconds(2), security: .plaintext)
        let attempts = Mutex(0)
        let value = try await client.withLeader(write: true, node: { _ -> Int in
            let n = attempts.withLock { count in
                defer { count += 1 }
                return count
            }
            if n < 2 { throw Self.streamFull }
            return n
        })
        #expect(value == 2)
    }
}

/// Two callers asking under one request id at once (a web page asking again under its
/// message's key while the first try still waits) both get the one reply, and the request
/// goes out once; neither waits forever.
@Suite struct MultiplexedSameKeyTests {
    @Test func twoCallersUnderOneKeyShareTheReplyAndTheRequestGoesOutOnce() async throws {
        let stream = MultiplexedStream<Chorus_V1_SendMessageRequest, Chorus_V1_SendReply>(endpoint: "test", kind: "send")
        let written = Mutex(0)
        let request = Chorus_V1_SendMessageRequest.with { $0.requestID = .with { $0.clientID = "web/x/page"; $0.sequence = 1 } }
        let running = Task {
            await stream.run { write, read in
                let (replies, sink) = AsyncThrowingStream<Chorus_V1_SendReply, any Error>.makeStream()
                let writer = RPCWriter(wrapping: CollectingWriter<Chorus_V1_SendMessageRequest> { batch in
                    written.withLock { $0 += batch.count }
                    // Answered once both callers wait.
                    try? await Task.sleep(for: .milliseconds(200))
                    for request in batch { sink.yield(.with { $0.requestID = request.requestID; $0.messageID = 42 }) }
                })
                async let writing: Void = write(writer)
                try await read(RPCAsyncSequence(wrapping: replies))
                try await writing
            }
        }
        async let first = stream.call(request)
        try await Task.sleep(for: .milliseconds(50))
        async let second = stream.call(request)
        let (a, b) = try await (first, second)
        #expect(a.messageID == 42 && b.messageID == 42)
        #expect(written.withLock { $0 } == 1)
        stream.close()
        running.cancel()
    }
}

/// A writer that hands each batch to `onWrite`.
struct CollectingWriter<Element: Sendable>: RPCWriterProtocol {
    let onWrite: @Sendable ([Element]) async -> Void
    func write(_ element: Element) async throws { await onWrite([element]) }
    func write(contentsOf elements: some Sequence<Element>) async throws { await onWrite(Array(elements)) }
}
