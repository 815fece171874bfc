import API
import GRPCCore
import Projections
import Synchronization

extension ChatService {
    /// Many sends on one stream. Each request is proposed as it arrives, without waiting for
    /// the ones before it, and answered when it is applied; replies leave through one writer.
    /// A request that fails is answered with the status `SendMessage` would have failed with,
    /// so one bad message never ends the stream the others share. At most `window` requests
    /// are in flight: past them the stream stops reading, and HTTP/2 flow control holds the
    /// client back, so neither the proposals nor the unsent replies grow without bound.
    func sendStream(
        request: RPCAsyncSequence<Chorus_V1_SendMessageRequest, any Error>,
        response: RPCWriter<Chorus_V1_SendReply>,
        context: ServerContext
    ) async throws {
        let (replies, sink) = AsyncStream<Chorus_V1_SendReply>.makeStream()
        let inFlight = InFlight(sink, window: Self.sendStreamWindow)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for await reply in replies { try await response.write(reply) }
            }
            for try await send in request {
                await inFlight.begin()
                let id = send.requestID
                do {
                    replica.propose(try command(id, try sendCommand(send))) { [configuration] result in
                        inFlight.end(Self.reply(to: id, result, configuration))
                    }
                } catch {
                    inFlight.end(Self.reply(to: id, failure: error as? RPCError ?? RPCError(code: .internalError, message: "\(error)")))
                }
            }
            // The client sent its last request: the stream ends when every one is answered.
            inFlight.inputEnded()
        }
    }

    /// Requests one send stream may have in flight.
    static let sendStreamWindow = 1_024

    static func reply(to id: Chorus_V1_RequestID, _ result: Result<Applied, ReplicaError>, _ configuration: NodeConfiguration) -> Chorus_V1_SendReply {
        switch result {
        case let .success(applied):
            switch applied.outcome {
            case let .success(messageID): return .with { $0.requestID = id; $0.messageID = messageID }
            case let .failure(rejection): return reply(to: id, failure: rejection.rpcError)
            }
        case let .failure(error):
            return reply(to: id, failure: configuration.rpcError(error))
        }
    }

    static func reply(to id: Chorus_V1_RequestID, failure: RPCError) -> Chorus_V1_SendReply {
        .with {
            $0.requestID = id
            $0.statusCode = Int32(failure.code.rawValue)
            $0.statusMessage = failure.message
            $0.leader = failure.metadata[stringValues: MetadataKeys.leader].first { _ in true } ?? ""
            $0.retryAfterMs = failure.metadata[stringValues: MetadataKeys.retryAfterMs].first { _ in true }.flatMap { UInt64($0) } ?? 0
        }
    }
}

/// Counts the sends of one stream still waiting for their reply, holds the reader back while
/// `window` are, and ends the replies once the client has sent its last request and every one
/// is answered.
private final class InFlight: Sendable {
    private let sink: AsyncStream<Chorus_V1_SendReply>.Continuation
    private let window: Int
    private struct State {
        var waiting = 0
        var inputEnded = false
        /// The reader, waiting for room in the window.
        var blocked: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    init(_ sink: AsyncStream<Chorus_V1_SendReply>.Continuation, window: Int) {
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
        guard state.waiting < window else { return false }
        state.waiting += 1
        return true
    }

    func end(_ reply: Chorus_V1_SendReply) {
        sink.yield(reply)
        let (done, reader) = state.withLock { state in
            state.waiting -= 1
            var reader: CheckedContinuation<Void, Never>?
            if let blocked = state.blocked, Self.take(&state, window) {
                state.blocked = nil
                reader = blocked
            }
            return (state.inputEnded && state.waiting == 0, reader)
        }
        reader?.resume()
        if done { sink.finish() }
    }

    func inputEnded() {
        let done = state.withLock { state in
            state.inputEnded = true
            return state.waiting == 0
        }
        if done { sink.finish() }
    }
}
