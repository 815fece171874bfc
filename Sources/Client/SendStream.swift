import API
import GRPCCore
import GRPCNIOTransportHTTP2
import Mailbox
import Synchronization

/// Every caller's sends to one node, multiplexed over a single `SendStream` call.
///
/// A unary call costs an HTTP/2 stream opened and closed on both sides; with many sends in
/// flight that bookkeeping is most of the work a send causes outside consensus. Here the
/// first send opens a call, later ones are written to it, and each reply is matched to its
/// caller by request id. When the call ends (the node stopped leading, went away, or the
/// connection broke), every caller still waiting gets UNAVAILABLE and retries through
/// `ChorusClient.withLeader` with the same request id, which the cluster applies at most once.
final class SendStream: Sendable {
    typealias Request = Chorus_V1_SendMessageRequest
    typealias Reply = Chorus_V1_SendReply

    let endpoint: String
    private let current = Mutex<Call?>(nil)
    private let openings: AsyncStream<Call>
    private let open: AsyncStream<Call>.Continuation
    /// How long a caller waits for its reply before it is told to retry.
    static let replyTimeout = Duration.seconds(6)

    init(endpoint: String) {
        self.endpoint = endpoint
        (openings, open) = AsyncStream.makeStream()
    }

    /// Sends `request` on the open call (opening one when there is none) and waits for its
    /// reply. Throws `RPCError` for a failed send, as the unary call would.
    func send(_ request: Request) async throws -> Reply {
        let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, any Error>) in
            let call = current.withLock { current in
                if let current { return current }
                let call = Call()
                current = call
                open.yield(call)
                return call
            }
            call.add(request, continuation)
        }
        guard reply.statusCode == 0 else {
            let code = Status.Code(rawValue: Int(reply.statusCode)).flatMap(RPCError.Code.init) ?? .unknown
            var hint = Metadata()
            if !reply.leader.isEmpty { hint.addString(reply.leader, forKey: MetadataKeys.leader) }
            if reply.retryAfterMs > 0 { hint.addString("\(reply.retryAfterMs)", forKey: MetadataKeys.retryAfterMs) }
            throw RPCError(code: code, message: reply.statusMessage, metadata: hint)
        }
        return reply
    }

    /// Opens each call its first sender asked for, one at a time, until cancelled.
    func run(stub: Chorus_V1_Chat.Client<HTTP2ClientTransport.Posix>) async {
        for await call in openings {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Callers whose reply is overdue (a node that stopped without closing
                    // the connection) retry elsewhere instead of waiting forever.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        call.expire(at: .now)
                    }
                }
                var reason = "closed by the node"
                do {
                    try await stub.sendStream(requestProducer: { writer in
                        // Sends that queued while the last batch was written go in one flush.
                        for await batch in call.requests.batches { try await writer.write(contentsOf: batch) }
                    }, onResponse: { response in
                        defer { call.requests.finish() }
                        for try await reply in response.messages { call.resolve(reply) }
                    })
                } catch {
                    reason = "\(error)"
                }
                current.withLock { if $0 === call { $0 = nil } }
                call.requests.finish()
                call.failAll(RPCError(code: .unavailable, message: "the send stream to \(endpoint) ended: \(reason)"))
                group.cancelAll()
            }
        }
    }

    /// Stops opening calls and half-closes the open one: it ends once its replies are in.
    func close() {
        open.finish()
        current.withLock { $0?.requests.finish() }
    }

    /// One `SendStream` call: the requests it still has to write and the callers waiting.
    final class Call: Sendable {
        struct Key: Hashable {
            var clientID: String
            var sequence: UInt64
            init(_ id: Chorus_V1_RequestID) { (clientID, sequence) = (id.clientID, id.sequence) }
        }

        struct Waiter {
            var continuation: CheckedContinuation<Reply, any Error>
            var deadline: ContinuousClock.Instant
        }

        /// Sends that wait to go out on the stream. A caller past the bound is answered at once
        /// instead of queueing without end behind a stream that cannot keep up.
        static let maxWaiting = 10_000
        let requests = Mailbox<Request>(capacity: Call.maxWaiting)
        private let state = Mutex<(waiting: [Key: Waiter], ended: RPCError?)>(([:], nil))

        func add(_ request: Request, _ continuation: CheckedContinuation<Reply, any Error>) {
            let ended: RPCError? = state.withLock { state in
                if let ended = state.ended { return ended }
                state.waiting[Key(request.requestID)] = Waiter(continuation: continuation, deadline: .now + SendStream.replyTimeout)
                return nil
            }
            if let ended {
                continuation.resume(throwing: ended)
            } else if !requests.push(request) {
                // Full, or the stream ended between the check above and the push.
                let refusal = requests.waiting >= Call.maxWaiting
                    ? RPCError(code: .resourceExhausted, message: "\(Call.maxWaiting) sends already wait to go out on this connection; retry shortly")
                    : RPCError(code: .unavailable, message: "the send stream ended; retry")
                state.withLock { $0.waiting.removeValue(forKey: Key(request.requestID)) }?.continuation.resume(throwing: refusal)
            }
        }

        func resolve(_ reply: Reply) {
            state.withLock { $0.waiting.removeValue(forKey: Key(reply.requestID)) }?.continuation.resume(returning: reply)
        }

        func expire(at now: ContinuousClock.Instant) {
            let overdue = state.withLock { state in
                let overdue = state.waiting.filter { $0.value.deadline < now }
                for key in overdue.keys { state.waiting[key] = nil }
                return overdue.values
            }
            for waiter in overdue {
                waiter.continuation.resume(throwing: RPCError(code: .deadlineExceeded, message: "no reply to the send within \(SendStream.replyTimeout)"))
            }
        }

        func failAll(_ error: RPCError) {
            let waiting = state.withLock { state in
                state.ended = state.ended ?? error
                defer { state.waiting = [:] }
                return state.waiting.values
            }
            for waiter in waiting { waiter.continuation.resume(throwing: error) }
        }
    }
}
