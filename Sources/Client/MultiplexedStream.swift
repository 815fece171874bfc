import API
import GRPCCore
import GRPCNIOTransportHTTP2
import Mailbox
import Synchronization

/// A request on a multiplexed stream, and the key its reply comes back under.
protocol MultiplexedRequest: Sendable {
    associatedtype Key: Hashable & Sendable
    var key: Key { get }
}

protocol MultiplexedReply: StreamedReply {
    associatedtype Key: Hashable & Sendable
    var key: Key { get }
}

/// Every caller's requests of one kind to one node, multiplexed over a single streaming call:
/// `SendStream` for sends (keyed by request id), `ReadStream` for reads (by call id).
///
/// A unary call costs an HTTP/2 stream opened and closed on both sides; with many requests in
/// flight that bookkeeping is most of the work a send or a read causes outside consensus.
/// Here the first request opens a call, later ones are written to it, and each reply is
/// matched to its caller by key. When the call ends (the node stopped leading, went away, or
/// the connection broke), every caller still waiting gets UNAVAILABLE and retries through
/// `ChorusClient.withLeader` (a send with the same request id, which the cluster applies at
/// most once).
final class MultiplexedStream<Request: MultiplexedRequest, Reply: MultiplexedReply>: Sendable where Request.Key == Reply.Key {
    typealias Key = Request.Key
    /// Makes the streaming call: `write` produces its requests, `read` takes its replies.
    typealias Open = @Sendable (
        _ write: @escaping @Sendable (RPCWriter<Request>) async throws -> Void,
        _ read: @escaping @Sendable (RPCAsyncSequence<Reply, any Error>) async throws -> Void
    ) async throws -> Void

    /// How long a caller waits for its reply before it is told to retry.
    static var replyTimeout: Duration { .seconds(6) }

    let endpoint: String
    /// What the stream carries, for messages: "send", "read".
    let kind: String
    private let current = Mutex<Call?>(nil)
    private let openings: AsyncStream<Call>
    private let open: AsyncStream<Call>.Continuation

    init(endpoint: String, kind: String) {
        self.endpoint = endpoint
        self.kind = kind
        (openings, open) = AsyncStream.makeStream()
    }

    /// Writes `request` on the open call (opening one when there is none) and waits for its
    /// reply. Throws `RPCError` for a failed request, as the unary call would.
    func call(_ request: Request) async throws -> Reply {
        let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, any Error>) in
            let call = current.withLock { current in
                if let current { return current }
                let call = Call(kind: kind)
                current = call
                open.yield(call)
                return call
            }
            call.add(request, continuation)
        }
        if let error = reply.error { throw error }
        return reply
    }

    /// Opens each call its first caller asked for, one at a time, until cancelled.
    func run(_ openCall: Open) async {
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
                // Whether the call ever opened: requests of a call that never did were not sent.
                let opened = Atomic<Bool>(false)
                do {
                    try await openCall({ writer in
                        opened.store(true, ordering: .relaxed)
                        // Requests that queued while the last batch was written go in one flush.
                        for await batch in call.requests.batches { try await writer.write(contentsOf: batch) }
                    }, { replies in
                        defer { call.requests.finish() }
                        for try await reply in replies { call.resolve(reply) }
                    })
                } catch {
                    reason = "\(error)"
                }
                current.withLock { if $0 === call { $0 = nil } }
                call.requests.finish()
                call.failAll(RPCError(code: .unavailable, message: "the \(kind) stream to \(endpoint) ended: \(reason)",
                                      metadata: opened.load(ordering: .relaxed) ? [:] : [MetadataKeys.notProposed: "1"]))
                group.cancelAll()
            }
        }
    }

    /// Stops opening calls and half-closes the open one: it ends once its replies are in.
    func close() {
        open.finish()
        current.withLock { $0?.requests.finish() }
    }

    /// One streaming call: the requests it still has to write and the callers waiting.
    final class Call: Sendable {
        struct Waiter {
            var continuation: CheckedContinuation<Reply, any Error>
            var deadline: ContinuousClock.Instant
        }

        /// Requests that wait to go out on the stream. A caller past the bound is answered at
        /// once instead of queueing without end behind a stream that cannot keep up.
        static var maxWaiting: Int { 10_000 }
        /// Callers waiting for one request at once.
        static var maxPerKey: Int { 8 }
        let requests = Mailbox<Request>(capacity: Call.maxWaiting)
        /// Callers by key. Two callers may ask under one key (a web page asking again under its
        /// message's key while its first request still waits): both get the one reply, and the
        /// request goes out once.
        private let state = Mutex<(waiting: [Key: [Waiter]], ended: RPCError?)>(([:], nil))
        let kind: String

        init(kind: String) {
            self.kind = kind
        }

        func add(_ request: Request, _ continuation: CheckedContinuation<Reply, any Error>) {
            let (ended, joined): (RPCError?, Bool) = state.withLock { state in
                if let ended = state.ended { return (ended, false) }
                let waiter = Waiter(continuation: continuation, deadline: .now + MultiplexedStream.replyTimeout)
                let joined = state.waiting[request.key] != nil
                if state.waiting[request.key, default: []].count >= Call.maxPerKey {
                    return (RPCError(code: .resourceExhausted, message: "\(Call.maxPerKey) callers already wait for this request; retry shortly",
                                     metadata: [MetadataKeys.retryAfterMs: "100"]), false)
                }
                state.waiting[request.key, default: []].append(waiter)
                return (nil, joined)
            }
            if let ended {
                continuation.resume(throwing: ended)
            } else if joined {
                return
            } else if !requests.push(request) {
                // Full, or the stream ended between the check above and the push.
                // Neither was written: a busy stream is waited out as a busy node is.
                let refusal = requests.waiting >= Call.maxWaiting
                    ? RPCError(code: .resourceExhausted, message: "\(Call.maxWaiting) \(kind) requests already wait to go out on this connection; retry shortly",
                               metadata: [MetadataKeys.retryAfterMs: "20"])
                    : RPCError(code: .unavailable, message: "the \(kind) stream ended; retry", metadata: [MetadataKeys.notProposed: "1"])
                for waiter in state.withLock({ $0.waiting.removeValue(forKey: request.key) }) ?? [] { waiter.continuation.resume(throwing: refusal) }
            }
        }

        func resolve(_ reply: Reply) {
            for waiter in state.withLock({ $0.waiting.removeValue(forKey: reply.key) }) ?? [] { waiter.continuation.resume(returning: reply) }
        }

        /// Fails the callers whose reply is overdue. The request was written: a reply that
        /// comes later finds nobody, and a caller who asks again gets it from the cluster's
        /// exactly-once table.
        func expire(at now: ContinuousClock.Instant) {
            let overdue = state.withLock { state in
                var overdue: [Waiter] = []
                for (key, waiters) in state.waiting where waiters.contains(where: { $0.deadline < now }) {
                    overdue += waiters.filter { $0.deadline < now }
                    let left = waiters.filter { $0.deadline >= now }
                    state.waiting[key] = left.isEmpty ? nil : left
                }
                return overdue
            }
            for waiter in overdue {
                waiter.continuation.resume(throwing: RPCError(code: .deadlineExceeded, message: "no reply to the \(kind) within \(MultiplexedStream.replyTimeout)"))
            }
        }

        func failAll(_ error: RPCError) {
            let waiting = state.withLock { state in
                state.ended = state.ended ?? error
                defer { state.waiting = [:] }
                return state.waiting.values.flatMap { $0 }
            }
            for waiter in waiting { waiter.continuation.resume(throwing: error) }
        }
    }
}

/// A send's reply comes back under its request id (client id and sequence).
struct RequestKey: Hashable, Sendable {
    var clientID: String
    var sequence: UInt64
    init(_ id: Chorus_V1_RequestID) { (clientID, sequence) = (id.clientID, id.sequence) }
}

extension Chorus_V1_SendMessageRequest: MultiplexedRequest {
    var key: RequestKey { RequestKey(requestID) }
}

extension Chorus_V1_SendReply: MultiplexedReply {
    var key: RequestKey { RequestKey(requestID) }
}

extension Chorus_V1_ReadRequest: MultiplexedRequest {
    var key: UInt64 { callID }
}

extension Chorus_V1_ReadReply: MultiplexedReply {
    var key: UInt64 { callID }
}
