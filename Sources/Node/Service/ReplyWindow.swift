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
        /// The reader, waiting for room in the window.
        var blocked: CheckedContinuation<Void, Never>?
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
                for await reply in replies {
                    try await response.write(reply)
                    inFlight.written()
                }
            }
            for try await request in requests {
                await inFlight.begin()
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

    /// Takes a place in the window, waiting for one if the window is full.
    func begin() async {
        if state.withLock({ Self.take(&$0, window) }) { return }
        await withCheckedContinuation { continuation in
            let taken = state.withLock { state in
                if Self.take(&state, window) { return true }
                state.blocked = continuation
                return false
            }
            if taken { continuation.resume() }
        }
    }

    private static func take(_ state: inout State, _ window: Int) -> Bool {
        guard state.taken < window else { return false }
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
            var reader: CheckedContinuation<Void, Never>?
            if let blocked = state.blocked, Self.take(&state, window) {
                state.blocked = nil
                reader = blocked
            }
            return (state.inputEnded && state.taken == 0, reader)
        }
        reader?.resume()
        if done { sink.finish() }
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
