import API
import GRPCCore

/// `grpc.health.v1.Health`: SERVING while the node runs. The empty service name and
/// `chorus.v1.Chat` are known; anything else is SERVICE_UNKNOWN (Check: NOT_FOUND).
struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    static let services = ["", "chorus.v1.Chat", "chorus.v1.Peer"]

    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service)'")
        }
        return .with { $0.status = .serving }
    }

    func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        .with { response in
            for service in Self.services {
                response.statuses[service] = .with { $0.status = .serving }
            }
        }
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext) async throws {
        let known = Self.services.contains(request.service)
        try await response.write(.with { $0.status = known ? .serving : .serviceUnknown })
        // The status never changes while the process lives; hold the stream until the
        // client leaves or the server shuts down.
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(3600))
        }
    }
}
