import GRPCCore
import Logging
import NIOExecutor
import ServiceLifecycle

/// One gRPC server (on the inline transport for clients, grpc-swift-2's for peers) as a service of the node's `ServiceGroup`.
///
/// On graceful shutdown the server stops accepting calls and lets the open ones finish for
/// `drainPeriod`, then cancels what is left: the node's streams (subscriptions, send streams,
/// other nodes' peer streams) last as long as their client, so draining alone would never end.
struct ServerService<Transport: ServerTransport>: Service {
    let server: GRPCServer<Transport>
    /// The address the server listens on, once it does: for the log.
    let listeningAddress: @Sendable () async throws -> String?
    /// Says what the listener is for in the log ("clients", "peers").
    let role: String
    let drainPeriod: Duration
    /// Runs when shutdown begins, before draining: ends what would otherwise outlast the drain.
    let beforeDrain: @Sendable () async -> Void
    /// The event loop of the listener: its handlers run there too, without a hop per call.
    let executor: EventLoopExecutor
    let logger: Logger

    init(_ server: GRPCServer<Transport>, for role: String, drainPeriod: Duration, executor: EventLoopExecutor,
         listeningAddress: @escaping @Sendable () async throws -> String?, beforeDrain: @escaping @Sendable () async -> Void = {}, logger: Logger) {
        self.server = server
        self.listeningAddress = listeningAddress
        self.role = role
        self.drainPeriod = drainPeriod
        self.executor = executor
        self.beforeDrain = beforeDrain
        self.logger = logger
    }

    func run() async throws {
        try await withTaskExecutorPreference(executor) { try await serve() }
    }

    private func serve() async throws {
        try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                do {
                    try await server.serve()
                } catch where Task.isCancelled {
                    // Cancelled at the end of the drain period (or with the whole group).
                }
                return .served
            }
            group.addTask {
                if let address = try await listeningAddress() {
                    logger.info("listening on \(address) for \(role)")
                }
                return .announced
            }
            group.addTask {
                // Throws CancellationError when serving ended first: nothing to drain.
                try await gracefulShutdown()
                await beforeDrain()
                server.beginGracefulShutdown()
                try await Task.sleep(for: drainPeriod)
                return .drainPeriodOver
            }
            while let ended = try await group.next() {
                switch ended {
                case .announced:
                    continue
                case .drainPeriodOver:
                    if drainPeriod > .zero {
                        logger.info("closing the calls from \(role) still open after \(drainPeriod)")
                    }
                    group.cancelAll()
                case .served:
                    group.cancelAll()
                    return
                }
            }
        }
    }

    private enum Ended { case served, announced, drainPeriodOver }
}
