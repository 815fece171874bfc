import API
import GRPCCore

extension ChatService {
    /// Many reads on one stream, as `sendStream` is for sends: what spares a busy client one
    /// HTTP/2 stream opened and closed per read. Each request is served as it arrives, by the
    /// same code as its unary call (so linearizable, on any node), and answered with its call
    /// id; one that fails carries the unary call's status, and the stream goes on. At most
    /// `streamWindow` reads are in flight, replies not yet written included.
    func readStream(
        request: RPCAsyncSequence<Chorus_V1_ReadRequest, any Error>,
        response: RPCWriter<Chorus_V1_ReadReply>,
        context: ServerContext
    ) async throws {
        try await ReplyWindow.serve(request, writingTo: response, window: Self.streamWindow) { read, inFlight, group in
            group.addTask { inFlight.end(await serve(read, context)) }
        }
    }

    /// One read of the stream, answered as its unary call would be.
    func serve(_ read: Chorus_V1_ReadRequest, _ context: ServerContext) async -> Chorus_V1_ReadReply {
        var reply = Chorus_V1_ReadReply()
        reply.callID = read.callID
        do {
            switch read.read {
            case let .history(request)?: reply.history = try await history(request: request, context: context)
            case let .undelivered(request)?: reply.undelivered = try await readUndelivered(request: request, context: context)
            case let .listAccounts(request)?: reply.listAccounts = try await listAccounts(request: request, context: context)
            case nil: throw RPCError(code: .invalidArgument, message: "the read names no request: set history, undelivered or list_accounts")
            }
        } catch let error as RPCError {
            reply.fail(with: error)
        } catch {
            reply.fail(with: RPCError(code: .internalError, message: "\(error)"))
        }
        return reply
    }
}
