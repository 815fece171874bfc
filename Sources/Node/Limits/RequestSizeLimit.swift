import GRPCCore
import SwiftProtobuf

/// Answers a client request larger than `--max-request-bytes` with RESOURCE_EXHAUSTED and the
/// limit, where the transport alone would reset the stream and the client would see only
/// CANCELLED. Each message of a stream is checked as it arrives.
struct RequestSizeLimit: ServerInterceptor {
    let limit: Int

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let limit = self.limit
        var request = request
        request.messages = RPCAsyncSequence(wrapping: request.messages.map { message in
            if let message = message as? any SwiftProtobuf.Message {
                let size = try (message.serializedBytes() as [UInt8]).count
                guard size <= limit else {
                    throw RPCError(code: .resourceExhausted, message: "a request of \(size) bytes is over this node's limit of \(limit) bytes")
                }
            }
            return message
        })
        return try await next(request, context)
    }
}
