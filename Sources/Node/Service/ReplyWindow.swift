import GRPCCore
import Synchronization

/// Bounds what one multiplexed stream (`SendStream`, `ReadStream`) holds: a request takes a
/// place when it is read and gives it back only once its reply is written. While `window`
/// places are taken the stream stops reading, and HTTP/2 flow control holds the client back;
/// so a client that sends fast, or one that stops reading its replies, holds at most `window`
/// requests and replies on the node. The replies end once the client has sent its last
/// request and every reply is written.
final class ReplyWindow<Reply: Sendable>: Sendable {
    private let sink: AsyncStream<Reply>.Continuation
    private let window: Int
    private struct State {
        /// Requests read whose reply is not written yet.
        var taken = 0
        var inputEnded = false
        /// The writer failed (the client went away): nothing more will be written.
        var abandoned = false
        /// The reader, waiting for room in the window.
        var blocked: CheckedContinuation<Bool, Never>?
    }
    private let state = Mutex(State())

    /// Serves one multiplexed stream: reads `requests` while the window has room and hands
    /// each to `start` (with the window, to `end` it with its reply, and the stream's task
    /// group, for work that needs a task), and writes the replies as they are answered, from
    /// one writer. Returns once the client has sent its last request and every reply is
    /// written; throws, ending every task of the stream, if the client goes away.
    static func serve<Request: Sendable>(
        _ requests: RPCAsyncSequence<Request, any Error>,
        writingTo response: RPCWriter<Reply>,
        window: Int,
        _ start: (Request, ReplyWindow, inout ThrowingDiscardingTaskGroup<any Error>) -> Void
    ) async throws {
        let (inFlight, replies) = make(window: window)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                do {
                    for await reply in replies {
                        try await response.write(reply)
                        inFlight.written()
                    }
                } catch {
                    // Places are freed by writing: a reader waiting for one would wait forever.
                    inFlight.abandon()
                    throw error
                }
            }
            for try await request in requests {
                guard await inFlight.begin() else { break }
                start(request, inFlight, &group)
            }
            // The client sent its last request: the stream ends when every one is answered.
            inFlight.inputEnded()
        }
    }

    /// Returns the window and the replies, in the order they are answered, for the writer.
    static func make(window: Int) -> (ReplyWindow, AsyncStream<Reply>) {
        let (replies, sink) = AsyncStream<Reply>.makeStream()
        return (ReplyWindow(sink, window: window), replies)
    }

    private init(_ sink: AsyncStream<Reply>.Continuation, window: Int) {
        self.sink = sink
        self.window = window
    }

    /// Takes a place in the window, waiting for one if the window is full; false once the
    /// stream is abandoned.
    func begin() async -> Bool {
        if let taken = state.withLock({ Self.take(&$0, window) }) { return taken }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let taken = state.withLock { state -> Bool? in
                if let taken = Self.take(&state, window) { return taken }
                state.blocked = continuation
                return nil
            }
            if let taken { continuation.resume(returning: taken) }
        }
    }

    /// Whether a place was taken (true), the stream is abandoned (false), or the window is
    /// full (nil).
    private static func take(_ state: inout State, _ window: Int) -> Bool? {
        guard !state.abandoned else { return false }
        guard state.taken < window else { return nil }
        state.taken += 1
        return true
    }

    /// A request is answered: its reply goes to the writer.
    func end(_ reply: Reply) {
        sink.yield(reply)
    }

    /// The writer wrote a reply: its place is free.
    func written() {
        let (done, reader) = state.withLock { state in
            state.taken -= 1
            var reader: CheckedContinuation<Bool, Never>?
            if let blocked = state.blocked, Self.take(&state, window) == true {
                state.blocked = nil
                reader = blocked
            }
            return (state.inputEnded && state.taken == 0, reader)
        }
        reader?.resume(returning: true)
        if done { sink.finish() }
    }

    /// The writer failed: a reader waiting for a place stops waiting, and none is taken again.
    func abandon() {
        let reader = state.withLock { state in
            state.abandoned = true
            defer { state.blocked = nil }
            return state.blocked
        }
        reader?.resume(returning: false)
        sink.finish()
    }

    /// The client sent its last request.
    func inputEnded() {
        let done = state.withLock { state in
            state.inputEnded = true
            return state.taken == 0
        }
        if done { sink.finish() }
    }
}
