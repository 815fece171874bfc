import API
import GRPCCore
import Projections
import Replica

extension ChatService {
    /// Many sends on one stream. Each request is proposed as it arrives, without waiting for
    /// the ones before it, and answered when it is applied; replies leave through one writer.
    /// A request that fails is answered with the status `SendMessage` would have failed with,
    /// so one bad message never ends the stream the others share. At most `streamWindow`
    /// requests are in flight, replies not yet written included (`ReplyWindow`).
    func sendStream(
        request: RPCAsyncSequence<Chorus_V1_SendMessageRequest, any Error>,
        response: RPCWriter<Chorus_V1_SendReply>,
        context: ServerContext
    ) async throws {
        // No task per send whose session is live here: the proposal's callback answers it.
        // Any other takes the unary call's path (a barrier, a retry's recorded outcome).
        try await ReplyWindow.serve(request, writingTo: response, window: Self.streamWindow) { send, inFlight, group in
            let id = send.requestID
            guard let hash = admitsAtOnce(send.token) else {
                group.addTask {
                    do {
                        let answer = try await sendMessage(request: send, context: context)
                        inFlight.end(.with { $0.requestID = id; $0.messageID = answer.messageID })
                    } catch {
                        inFlight.end(Self.reply(to: id, failure: error as? RPCError ?? RPCError(code: .internalError, message: "\(error)")))
                    }
                }
                return
            }
            do {
                replica.propose(try command(id, try sendCommand(send, tokenHash: hash))) { [configuration] result in
                    inFlight.end(Self.reply(to: id, result, configuration))
                }
            } catch {
                inFlight.end(Self.reply(to: id, failure: error as? RPCError ?? RPCError(code: .internalError, message: "\(error)")))
            }
        }
    }

    /// Requests one send or read stream may have in flight.
    static let streamWindow = 1_024

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
            $0.fail(with: failure)
        }
    }
}
