import GRPCCore
import NIOCore
import NIOHTTP2
import Synchronization

/// One call on a connection: the request parts its handler reads, and the handle that cancels
/// it. The connection (on its event loop) delivers parts and ends the request; the handler's
/// task takes parts, from whichever thread it runs on, through `shared`.
final class InlineStream: Sendable {
    let id: HTTP2StreamID
    let descriptor: MethodDescriptor
    let eventLoop: any EventLoop
    let connection: NIOLoopBound<InlineConnectionHandler>
    /// What the connection does on the event loop alone (flow control, deframing, the response).
    let onLoop: NIOLoopBoundBox<LoopState>
    private let shared = Mutex(Shared())

    /// The queued request bytes past which the connection stops giving the client window for
    /// this stream: a handler that does not read holds back its sender, not the node's memory.
    let queueBound: Int

    /// Set for a method the transport answers without GRPCCore (`UnaryHandler`): its request
    /// is gathered on the loop and handed over whole.
    let unary: InlineServerTransport.UnaryHandler?

    init(id: HTTP2StreamID, descriptor: MethodDescriptor, unary: InlineServerTransport.UnaryHandler?, limit: RequestLimit, queueBound: Int,
         connection: InlineConnectionHandler, eventLoop: any EventLoop) {
        self.id = id
        self.descriptor = descriptor
        self.unary = unary
        self.eventLoop = eventLoop
        self.queueBound = queueBound
        self.connection = NIOLoopBound(connection, eventLoop: eventLoop)
        onLoop = NIOLoopBoundBox(LoopState(deframer: MessageDeframer(limit: limit)), eventLoop: eventLoop)
    }

    struct LoopState {
        var deframer: MessageDeframer
        /// The client sent END_STREAM (or the request was refused: nothing more is read).
        var requestEnded = false
        /// Set once the request broke a limit: its further DATA is dropped unread.
        var discarding = false
        var response = Response.idle
        var messagesWritten = 0
        /// Bytes of a streamed response written but not yet on the socket.
        var unwritten = 0
        /// DATA bytes received on this stream and not yet given back with a WINDOW_UPDATE.
        var uncredited = 0
        /// The call's deadline (grpc-timeout), which the connection's one deadline timer
        /// checks.
        var deadline: NIODeadline?
        /// A unary call's request, once its one message is in.
        var request: InlineBytes?
        /// When a unary call opened, and whether its handler began.
        var opened: NIODeadline?
        var started = false
    }

    enum Response { case idle, open, closed }

    private struct Shared {
        var parts = CircularBuffer<RPCRequestPart<InlineBytes>>()
        var queuedBytes = 0
        var end = End.open
        var waiter: CheckedContinuation<RPCRequestPart<InlineBytes>?, any Error>?
        var handle: ServerContext.RPCCancellationHandle?
        var task: Task<Void, Never>?
        /// The connection held back window until the handler reads.
        var creditWanted = false
        var cancelled = false
        var taskEnded = false
    }

    private enum End {
        case open
        case finished
        case failed(any Error)
    }

    // MARK: From the connection, on the event loop

    /// Queues a request part, or hands it to the handler waiting for it. Returns the bytes now
    /// queued, which the connection weighs against `queueBound`.
    @discardableResult
    func deliver(_ part: RPCRequestPart<InlineBytes>) -> Int {
        let (waiter, queued): (CheckedContinuation<RPCRequestPart<InlineBytes>?, any Error>?, Int) = shared.withLock { state in
            guard case .open = state.end else { return (nil, 0) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, state.queuedBytes)
            }
            state.parts.append(part)
            if case let .message(bytes) = part { state.queuedBytes += Self.cost(bytes) }
            return (nil, state.queuedBytes)
        }
        waiter?.resume(returning: part)
        return queued
    }

    /// What a queued message counts against `queueBound`: its bytes on the wire, and at least
    /// 64, so that a flood of empty messages is held back as surely as large ones.
    private static func cost(_ bytes: InlineBytes) -> Int {
        max(64, MessageFraming.prefixLength + bytes.count)
    }

    /// The request ended: once its queued parts are read, the handler reads its end.
    func finishRequest() {
        let waiter = shared.withLock { state -> CheckedContinuation<RPCRequestPart<InlineBytes>?, any Error>? in
            guard case .open = state.end else { return nil }
            state.end = .finished
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Ends the call from the transport's side: the handler's next read throws `error` and its
    /// cancellation handle fires (as on a reset or a closed connection); with `endingTask`, its
    /// task is cancelled too (the server is stopping).
    func cancel(_ error: any Error, endingTask: Bool = false) {
        end(error, cancelling: true, endingTask: endingTask)
    }

    /// Fails the request: the handler's next read throws `error`, which the handler answers
    /// with as its status (a request over the limit).
    func fail(_ error: any Error) {
        end(error, cancelling: false, endingTask: false)
    }

    private func end(_ error: any Error, cancelling: Bool, endingTask: Bool) {
        let (waiter, handle, task) = shared.withLock { state in
            if case .open = state.end {
                state.end = .failed(error)
                // A failed request's handler reads what came before the failure (its metadata
                // at least) and then the error, which it answers with; a cancelled call's
                // handler has no one to answer.
                if cancelling {
                    state.parts.removeAll()
                    state.queuedBytes = 0
                }
            }
            if cancelling { state.cancelled = true }
            if endingTask { state.taskEnded = true }
            defer { state.waiter = nil }
            return (state.waiter, state.handle, endingTask ? state.task : nil)
        }
        waiter?.resume(throwing: error)
        if cancelling { handle?.cancel() }
        task?.cancel()
    }

    /// Fires the call's cancellation handle, as GRPCCore does when a deadline passes: the
    /// request's parts stay readable, and the handler decides what a cancelled call answers.
    func cancelHandle() {
        let handle = shared.withLock { state in
            state.cancelled = true
            return state.handle
        }
        handle?.cancel()
    }

    /// Asks for a call to the connection's `credit(_:)` once the handler reads below the bound.
    func wantCredit() -> Bool {
        shared.withLock { state in
            guard state.queuedBytes > queueBound / 2 else { return false }
            state.creditWanted = true
            return true
        }
    }

    // MARK: From the handler's task

    /// Sets the handle that cancels the call; fires it at once if the stream was cancelled
    /// before the handler began.
    func attach(_ handle: ServerContext.RPCCancellationHandle) {
        let cancelled = shared.withLock { state -> Bool in
            state.handle = handle
            return state.cancelled
        }
        if cancelled { handle.cancel() }
    }

    /// The task that runs the handler, for cancelling it when the server stops.
    func attachTask(_ task: Task<Void, Never>) {
        let ended = shared.withLock { state -> Bool in
            state.task = task
            return state.taskEnded
        }
        if ended { task.cancel() }
    }

    func next() async throws -> RPCRequestPart<InlineBytes>? {
        try await withCheckedThrowingContinuation { continuation in
            let now = shared.withLock { state -> Result<RPCRequestPart<InlineBytes>?, any Error>? in
                if let part = state.parts.popFirst() {
                    if case let .message(bytes) = part {
                        state.queuedBytes -= Self.cost(bytes)
                        if state.creditWanted, state.queuedBytes <= queueBound / 2 {
                            state.creditWanted = false
                            eventLoop.execute { self.connection.value.credit(self) }
                        }
                    }
                    return .success(part)
                }
                switch state.end {
                case .open:
                    state.waiter = continuation
                    return nil
                case .finished: return .success(nil)
                case let .failed(error): return .failure(error)
                }
            }
            if let now { continuation.resume(with: now) }
        }
    }
}

/// The request parts of one call, as its handler reads them.
struct InlineInbound: AsyncSequence, Sendable {
    typealias Element = RPCRequestPart<InlineBytes>
    let stream: InlineStream

    func makeAsyncIterator() -> Iterator { Iterator(stream: stream) }

    struct Iterator: AsyncIteratorProtocol {
        let stream: InlineStream
        mutating func next() async throws -> RPCRequestPart<InlineBytes>? { try await stream.next() }
    }
}

/// The response of one call: each part becomes frames on the connection's event loop. A
/// streamed response waits while too much of it is still unwritten.
struct InlineOutbound: ClosableRPCWriterProtocol {
    typealias Element = RPCResponsePart<InlineBytes>
    let stream: InlineStream

    func write(_ element: RPCResponsePart<InlineBytes>) async throws {
        let backpressure: EventLoopFuture<Void>?
        if stream.eventLoop.inEventLoop {
            backpressure = try stream.connection.value.write(element, on: stream)
        } else {
            let stream = self.stream
            backpressure = try await stream.eventLoop.submit { try stream.connection.value.write(element, on: stream) }.get()
        }
        try await backpressure?.get()
    }

    func write(contentsOf elements: some Sequence<RPCResponsePart<InlineBytes>>) async throws {
        for element in elements { try await write(element) }
    }

    func finish() async {
        // A handler's executor ends every call with a status; one that did not is a bug there.
        try? await write(.status(Status(code: .internalError, message: "the call ended without a status"), Metadata()))
    }

    func finish(throwing error: any Error) async {
        let status = (error as? RPCError).map { Status(code: Status.Code($0.code), message: $0.message) }
            ?? Status(code: .unknown, message: "the call failed: \(error)")
        try? await write(.status(status, Metadata()))
    }
}
