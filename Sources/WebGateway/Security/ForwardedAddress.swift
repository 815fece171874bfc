import Client
import Hummingbird

/// Names the browser's address in every call to the cluster made while serving its request
/// (`ForwardedFor`), when the gateway calls the nodes with its own certificate: the nodes'
/// per-address limits then count each person, not the gateway.
struct ForwardedAddress: RouterMiddleware {
    typealias Context = GatewayContext

    func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        try await ForwardedFor.$address.withValue(context.remoteAddress) { try await next(request, context) }
    }
}
