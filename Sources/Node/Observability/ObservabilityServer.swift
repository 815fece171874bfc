import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Projections
import ServiceLifecycle

/// The node's HTTP listener for machines that watch it (`--metrics-listen`), plaintext and
/// read-only, on its own event loop so neither client load nor the Raft loop delays a scrape:
///
/// - `GET /metrics`: the Prometheus text exposition of `NodeMetrics`, with the gauges that
///   are read rather than tracked (rows in the projections, subscriptions, memory, file
///   descriptors) refreshed first.
/// - `GET /healthz`: 200 while the process runs and its event loop answers.
/// - `GET /readyz`: 200 when `Readiness` finds nothing wrong, else 503 with the reasons.
///
/// Bind it to a private address: it tells how many users, messages and connections there are.
struct ObservabilityServer: Service {
    let address: PeerAddress
    let metrics: NodeMetrics
    let probe: ReadinessProbe
    let current: CurrentState
    let events: EventHub
    /// Its own loop, which the node shuts down only after every service has ended: shut down
    /// here, as the service returned, it met the listener's last close work still on its
    /// way ("Cannot schedule tasks on an EventLoop that has already shut down").
    let eventLoop: any EventLoopGroup
    let logger: Logger

    func run() async throws {
        let application = Application(
            router: router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "chorus-node"),
            eventLoopGroupProvider: .shared(eventLoop),
            logger: logger
        )
        // `run`, not `runService`: the latter traps SIGTERM in a group of its own and ends the
        // listener before the node's group asks it to, which the group reports as a failure.
        try await application.run()
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("metrics") { _, _ in
            refresh()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ in
            let readiness = await probe.check()
            let text = readiness.ready ? "ready\n" : readiness.problems.map { "not ready: \($0)\n" }.joined()
            return Response(status: readiness.ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return router
    }

    /// The gauges read at scrape time.
    func refresh() {
        if let counts = try? current.state.counts() {
            metrics.users.record(counts.users)
            metrics.messages.record(counts.messages)
            metrics.inboxMessages.record(counts.undelivered)
            metrics.onlineUsers.record(counts.onlineUsers)
        }
        metrics.subscriptions.record(events.count)
        if let resident = ProcessStats.residentBytes() { metrics.residentMemory.record(resident) }
        if let descriptors = ProcessStats.openFileDescriptors() { metrics.openFileDescriptors.record(descriptors) }
    }
}
