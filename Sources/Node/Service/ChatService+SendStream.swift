import API
import GRPCCore
import Projections
import Synchronization

extension ChatService {
    /// Many sends on one stream. Each request is proposed as it arrives, without waiting for
    /// the ones before it, and answered when it is applied; replies leave through one writer.
    /// A request that fails is answered with the status `SendMessage` would have failed with,
    /// so one bad message never ends the stream the others share.
    func sendStream(
        request: RPCAsyncSequence<Chorus_V1_SendMessageRequest, any Error>,
        response: RPCWriter<Chorus_V1_SendReply>,
        context: ServerContext
    ) async throws {
        let (replies, sink) = AsyncStream<Chorus_V1_SendReply>.makeStream()
        let inFlight = InFlight(sink)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for await reply in replies { try await response.write(reply) }
            }
            for try await send in request {
                inFlight.begin()
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
            $0.leader = failure.metadata[stringValues: leaderMetadataKey].first { _ in true } ?? ""
        }
    }
}

/// Counts the sends of one stream still waiting for their reply, and ends the replies once
/// the client has sent its last request and every one is answered.
private final class InFlight: Sendable {
    private let sink: AsyncStream<Chorus_V1_SendReply>.Continuation
    private let state = Mutex<(waiting: Int, inputEnded: Bool)>((0, false))

    init(_ sink: AsyncStream<Chorus_V1_SendReply>.Continuation) {
        self.sink = sink
    }

    func begin() {
        state.withLock { $0.waiting += 1 }
    }

    func end(_ reply: Chorus_V1_SendReply) {
        sink.yield(reply)
        let done = state.withLock { state in
            state.waiting -= 1
            return state.inputEnded && state.waiting == 0
        }
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
