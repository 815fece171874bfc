import GRPCCore
import Metrics
import Synchronization

/// Counts every gRPC call a listener serves by method and final status code, and times it:
/// `chorus_grpc_requests_total{method,code}` and, for unary calls,
/// `chorus_grpc_request_duration_seconds{method}`.
/// A call's status is known only once its response stream ends, so the response's producer is
/// wrapped and the outcome recorded when it returns or throws.
struct RequestMetrics: ServerInterceptor {
    let metrics: NodeMetrics

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let calls = metrics.calls(of: context.descriptor.fullyQualifiedMethod, timed: context.descriptor.type == .unary)
        let started = ContinuousClock.now
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            calls.record(Self.code(of: error), since: started)
            throw error
        }
        switch response.accepted {
        case var .success(contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    calls.record("ok", since: started)
                    return trailers
                } catch {
                    calls.record(Self.code(of: error), since: started)
                    throw error
                }
            }
            response.accepted = .success(contents)
        case let .failure(error):
            calls.record(Self.code(of: error), since: started)
        }
        return response
    }

    /// The status code's name as Prometheus labels usually spell it (`not_found`, …).
    static func code(of error: any Error) -> String {
        let code = (error as? RPCError)?.code ?? (error as? any RPCErrorConvertible)?.rpcErrorCode ?? .unknown
        return Self.names[code] ?? "unknown"
    }

    static let names: [RPCError.Code: String] = [
        .cancelled: "cancelled", .unknown: "unknown", .invalidArgument: "invalid_argument", .deadlineExceeded: "deadline_exceeded",
        .notFound: "not_found", .alreadyExists: "already_exists", .permissionDenied: "permission_denied", .resourceExhausted: "resource_exhausted",
        .failedPrecondition: "failed_precondition", .aborted: "aborted", .outOfRange: "out_of_range", .unimplemented: "unimplemented",
        .internalError: "internal", .unavailable: "unavailable", .dataLoss: "data_loss", .unauthenticated: "unauthenticated",
    ]
}
