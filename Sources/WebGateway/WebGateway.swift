import Client
import ClusterPKI
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL

/// `chorus-web`'s server: the page, its JSON API under `/api`, and the live channel at
/// `/api/events`, all in front of one `ChorusClient`, so the browser's requests reach the
/// cluster exactly as the terminal client's do (leader discovery, retries, exactly-once).
public enum WebGateway {
    /// The HTTP routes (page and API), without the live channel; tests drive it directly.
    public static func router(client: ChorusClient, configuration: GatewayConfiguration) throws -> Router<GatewayContext> {
        try router(GatewayServices(client: client, configuration: configuration))
    }

    static func router(_ services: GatewayServices) throws -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self)
        router.middlewares.add(SecurityHeaders())
        router.middlewares.add(SameOriginGuard())
        if services.configuration.forwardsClientAddresses { router.middlewares.add(ForwardedAddress()) }
        let api = router.group("api")
        SessionRoutes(services: services).add(to: api)
        ChatRoutes(services: services).add(to: api)
        GroupRoutes(services: services).add(to: api)
        try StaticPages.load().add(to: router)
        return router
    }

    /// The whole gateway as a service: HTTP/1.1 with WebSocket upgrades, over TLS unless
    /// `configuration.tls` is nil.
    public static func application(
        client: ChorusClient, configuration: GatewayConfiguration, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let services = GatewayServices(client: client, configuration: configuration)
        let router = try self.router(services)
        let sockets = Router(context: GatewayContext.self)
        EventSocket(services: services).add(to: sockets)
        let idle = TimeAmount.nanoseconds(Int64(configuration.limits.idleTimeout.components.seconds) * 1_000_000_000)
        let upgrade = HTTPServerBuilder.http1WebSocketUpgrade(
            webSocketRouter: sockets,
            configuration: .init(
                http1: .init(idleTimeout: idle),
                ws: .init(maxFrameSize: 1 << 16, autoPing: .enabled(timePeriod: .seconds(20)), closeTimeout: .seconds(5), validateUTF8: true)
            )
        )
        let server: HTTPServerBuilder
        if let tls = configuration.tls {
            var settings = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem))
            )
            ServerTLS.restrict(&settings)
            server = try .tls(upgrade, tlsConfiguration: settings)
        } else {
            server = upgrade
        }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "chorus-web",
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.limits.liveConnections + 1_000)
            ),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
