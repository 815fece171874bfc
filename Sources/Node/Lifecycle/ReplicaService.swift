import NIOExecutor
import ServiceLifecycle

/// The replica loop as a service: it stops on graceful shutdown or cancellation. The node
/// lists it first, so it stops last, after the servers drained: calls still waiting for a
/// commit while the client server drains can still get one.
struct ReplicaService: Service {
    let replica: ChatReplica

    /// Throws when the replica stopped by itself (`UnknownEntry`): the node stops with it.
    func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await replica.run()
        } onCancelOrGracefulShutdown: {
            replica.stop()
        }
    }
}

/// The links to the other nodes as a service: they run until the node shuts down.
struct PeerLinksService: Service {
    let links: PeerLinks
    /// The peers' event loop, which the links' streams use.
    let executor: EventLoopExecutor

    func run() async {
        await withTaskExecutorPreference(executor) { await runLinks() }
    }

    private func runLinks() async {
        await cancelWhenGracefulShutdown {
            await links.run()
            // A cluster of one has no links; the service still lasts as long as the node.
            try? await gracefulShutdown()
        }
    }
}
