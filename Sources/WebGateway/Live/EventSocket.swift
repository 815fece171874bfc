import Client
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket

/// `GET /api/events`: the page's live channel, a WebSocket that carries what the cluster
/// pushes to this session (messages, deletions, accounts, presence) and the failover banner's
/// news (`reconnecting`, then `attached` again).
///
/// Messages that waited before the page connected are not pushed: the page reads them N at a
/// time. A message pushed here is not marked delivered by the gateway: the page says which
/// messages it has put on the screen (`POST /api/messages/shown`), and only those are. One
/// lost on the way (a dropped connection, a closed tab) stays waiting and is read later.
struct EventSocket: Sendable {
    let services: GatewayServices

    func add(to router: Router<GatewayContext>) {
        router.ws("api/events") { request, _ in
            guard SameOriginGuard<GatewayContext>.isSameOrigin(request) else {
                throw HTTPError(.forbidden, message: "This connection came from another site and was refused.")
            }
            _ = try SessionCookie.require(request)
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            guard let session = SessionCookie(context.request) else { return }
            do {
                try await services.live.holding(session.token, from: context.requestContext.remoteAddress) {
                    try await run(session, inbound, outbound, context.logger)
                }
            } catch let refusal as LiveConnections.Refusal {
                let reason = switch refusal {
                case let .gatewayFull(limit): "the gateway has \(limit) live connections open, the most it allows"
                case let .sessionFull(limit): "this session has \(limit) live connections open (tabs), the most allowed"
                case let .addressFull(limit): "your address has \(limit) live connections open, the most allowed"
                }
                try await outbound.write(.text(LiveEvent.ended(reason).json()))
                try await outbound.close(.policyViolation, reason: "too many connections")
            }
        }
    }

    private func run(_ session: SessionCookie, _ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, _ logger: Logger) async throws {
        let limits = services.configuration.limits
        try await withThrowingTaskGroup(of: Void.self) { group in
            // The browser says nothing on this channel; reading lets its close (and pings) through.
            group.addTask {
                for try await _ in inbound.messages(maxSize: 1024) {}
            }
            group.addTask {
                let events = services.client.subscribe(token: session.token, acknowledge: false, liveOnly: true, buffer: limits.liveBuffer)
                do {
                    for try await event in events {
                        try await write(LiveEvent(event), to: outbound, within: limits.liveWriteTimeout)
                    }
                } catch let error as ChorusError {
                    try await write(.ended(GatewayError.sentence(error.description)), to: outbound, within: limits.liveWriteTimeout)
                    try await outbound.close(.normalClosure, reason: "session ended")
                }
            }
            // Whichever ends first (the browser left, the session ended) ends the other.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Writes one frame, or gives up on a browser that does not take it in time.
    private func write(_ event: LiveEvent, to outbound: WebSocketOutboundWriter, within timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await outbound.write(.text(event.json()))
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let written = try await group.next() ?? false
            group.cancelAll()
            if !written { throw SlowBrowser() }
        }
    }

    struct SlowBrowser: Error {}
}
