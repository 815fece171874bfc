import API
import GRPCCore

/// The browser a web gateway makes a call for. A gateway serves many people from one
/// address; a node that counted failed logins by that address would let a few attackers
/// lock every web user out. So the gateway names each call's browser, and the node believes
/// it only from a caller whose certificate is a `web` certificate of this cluster (on the
/// peer listener, which checks certificates). Calls made inside a multiplexed stream keep the
/// stream's address: only unary calls carry their own.
enum ForwardedClient {
    @TaskLocal static var address: String?

    /// Sets `address` for the calls of a proven web gateway that name a browser.
    struct Interceptor: ServerInterceptor {
        let clusterID: String

        func intercept<Input: Sendable, Output: Sendable>(
            request: StreamingServerRequest<Input>,
            context: ServerContext,
            next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
        ) async throws -> StreamingServerResponse<Output> {
            guard let named = request.metadata[stringValues: MetadataKeys.clientAddress].first(where: { _ in true }),
                  let browser = ForwardedClient.validated(named),
                  case let .web(cluster, _)? = context.peerIdentity, cluster == clusterID
            else { return try await next(request, context) }
            return try await ForwardedClient.$address.withValue("web:\(browser)") { try await next(request, context) }
        }
    }

    /// An IPv4 or IPv6 address as text (hex digits, '.', ':'), at most 64 bytes; else nil.
    static func validated(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        let allowed = text.utf8.allSatisfy { byte in
            (48...58).contains(byte) || byte == 46 || (97...102).contains(byte) || (65...70).contains(byte)
        }
        return allowed ? text : nil
    }
}
