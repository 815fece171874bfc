import API
import GRPCCore

/// `grpc.health.v1.Health`, answering from the node's real state (`Readiness`): SERVING while
/// it knows a leader, applies close behind the commit index and has disk to spare;
/// NOT_SERVING otherwise. The empty service name and `chorus.v1.Chat` are known; anything else
/// is SERVICE_UNKNOWN (Check: NOT_FOUND). Watch sends the status, then each change (checked
/// every second) until the client leaves or the server shuts down.
struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    static let services = ["", "chorus.v1.Chat", "chorus.v1.Peer"]
    let probe: ReadinessProbe

    func status() async -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        await probe.check().ready ? .serving : .notServing
    }

    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard Self.services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service)'")
        }
        let status = await status()
        return .with { $0.status = status }
    }

    func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        let status = await status()
        return .with { response in
            for service in Self.services {
                response.statuses[service] = .with { $0.status = status }
            }
        }
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext) async throws {
        guard Self.services.contains(request.service) else {
            try await response.write(.with { $0.status = .serviceUnknown })
            while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
            return
        }
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
        while !Task.isCancelled {
            let now = await status()
            if now != last {
                try await response.write(.with { $0.status = now })
                last = now
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}
