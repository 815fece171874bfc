import API
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LogStore
import Logging
import NIOExecutor
import NIOPosix
import Projections
import Raft
import ServiceLifecycle

/// A running Chorus node: the data directory, the replica loop, the peer links and one gRPC
/// server for clients and peers. Runs as a swift-service-lifecycle `Service`: SIGTERM or
/// SIGINT stop it gracefully; SIGKILL loses nothing acknowledged, since nothing is
/// acknowledged before it is fsynced on a majority.
public struct ChorusNode: Service {
    public let configuration: NodeConfiguration
    let logger: Logger

    public init(configuration: NodeConfiguration, logger: Logger) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let data = try DataDirectory(path: configuration.dataDirectory, clusterID: configuration.clusterID, nodeID: configuration.id)
        let bootstrap = ClusterConfiguration(voters: Set(configuration.members.keys))
        let storage = LogStoreAdapter(store: data.log, bootstrap: bootstrap)
        var options = RaftOptions(id: configuration.id, seed: UInt64.random(in: 1...UInt64.max),
                                  electionTicks: configuration.electionTicks, heartbeatTicks: configuration.heartbeatTicks)
        options.applied = try data.state.lastApplied()
        let core = RaftCore(storage: storage, options: options)
        // One event loop carries all network traffic, and the gRPC handlers and peer streams
        // run on it as well (`EventLoopExecutor`); the Raft loop has its own thread.
        let network = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { network.shutdownGracefully { _ in } }
        let executor = EventLoopExecutor(network.next())
        // One pair of certificate files behind every TLS context, read again on SIGHUP.
        let certificates = try configuration.tls.map { try CertificateFiles(certificate: $0.certificate, key: $0.key) }
        let links = PeerLinks(configuration: configuration, certificates: certificates, snapshots: data.snapshots, eventLoopGroup: network, logger: logger)
        let current = CurrentState(data.state)
        let replica = Replica(core: core, storage: storage, data: data, current: current, transport: links, configuration: configuration, logger: logger)

        let clientServices: [any RegistrableRPCService] = [
            ChatService(replica: replica, current: current, configuration: configuration),
            HealthService(),
        ]
        let peerServices: [any RegistrableRPCService] = [
            PeerService(replica: replica, clusterID: configuration.clusterID,
                        snapshots: SnapshotReceiver(store: data.snapshots, maxBytes: configuration.maxSnapshotBytes, logger: logger),
                        members: Set(configuration.members.keys), authenticated: configuration.tls != nil, logger: logger),
            AdminService(replica: replica, configuration: configuration),
        ]
        func listener(_ address: PeerAddress, _ security: HTTP2ServerTransport.Posix.TransportSecurity) -> HTTP2ServerTransport.Posix {
            HTTP2ServerTransport.Posix(
                address: .ipv4(host: address.host, port: address.port),
                transportSecurity: security,
                config: .defaults { $0.rpc.maxRequestPayloadSize = configuration.maxRequestBytes },
                eventLoopGroup: network
            )
        }
        let servers: [GRPCServer<HTTP2ServerTransport.Posix>]
        if let peerListen = configuration.peerListen {
            servers = [
                GRPCServer(transport: listener(configuration.listen, configuration.tls?.serverSecurity(reloading: certificates) ?? .plaintext), services: clientServices),
                GRPCServer(transport: listener(peerListen, configuration.tls?.mutualServerSecurity(reloading: certificates) ?? .plaintext), services: peerServices),
            ]
        } else {
            servers = [GRPCServer(transport: listener(configuration.listen, .plaintext), services: clientServices + peerServices)]
        }
        let reloadOnHangup = certificates.map { files in
            signal(SIGHUP, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGHUP)
            source.setEventHandler {
                do {
                    let serial = try files.reload()
                    logger.info("SIGHUP: reloaded \(files.certificatePath) (serial \(serial)); new connections use it")
                } catch {
                    logger.error("SIGHUP: cannot reload the certificate, keeping serial \(files.serial): \(error)")
                }
            }
            source.resume()
            return source
        }
        defer { reloadOnHangup?.cancel() }
        if let certificates {
            logger.info("TLS with \(certificates.certificatePath) (serial \(certificates.serial)); SIGHUP reloads it")
        }
        if configuration.tls == nil {
            logger.warning("RUNNING WITHOUT TLS (--insecure): anyone who reaches \(configuration.peerListen ?? configuration.listen) can speak as a peer, and passwords and tokens cross the network in clear. For development only.")
        }
        if Replica.Loop.unsafeAckOnAppend {
            logger.critical("CHORUS_UNSAFE_ACK_ON_APPEND is set: sends are acknowledged before they commit and CAN BE LOST. This exists only to test the fault-injection checker.")
        }
        logger.info("node \(configuration.id) of cluster '\(configuration.clusterID)' starting on \(configuration.listen), data in \(configuration.dataDirectory), last applied \(options.applied)")

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                // Returns once `stop()` is called, after failing whatever still waits.
                group.addTask { await replica.run() }
                group.addTask {
                    do {
                        try await withTaskExecutorPreference(executor) {
                            try await serveNetwork(servers: servers, links: links, replica: replica)
                        }
                    } catch is ShutdownDeadline {
                        logger.info("closing the streams still open after the shutdown grace period")
                    }
                }
            }
        } onGracefulShutdown: {
            logger.info("shutting down node \(configuration.id)")
            for server in servers { server.beginGracefulShutdown() }
            replica.stop()
            // Everything acknowledged is already fsynced; a shutdown that cannot finish in
            // time (a peer that stopped reading) ends the process rather than hang.
            let grace = configuration.shutdownGracePeriod
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18)
                logger.warning("node \(configuration.id) did not stop within \(grace); exiting")
                exit(0)
            }
        }
        try current.state.sync()
        logger.info("node \(configuration.id) stopped")
    }

    /// Peer streams and subscriptions never end on their own, so a graceful shutdown gives
    /// open calls a moment, then cancels them.
    struct ShutdownDeadline: Error {}

    func serveNetwork(servers: [GRPCServer<HTTP2ServerTransport.Posix>], links: PeerLinks, replica: Replica) async throws {
        try await withThrowingDiscardingTaskGroup { network in
            network.addTask { await links.run() }
            network.addTask {
                // Cancelled instead when the servers stopped first: nothing left to force.
                do { try await gracefulShutdown() } catch { return }
                try? await Task.sleep(for: .seconds(2))
                if Task.isCancelled { return }
                throw ShutdownDeadline()
            }
            try await withThrowingDiscardingTaskGroup { serving in
                for server in servers {
                    serving.addTask {
                        if let address = try await server.listeningAddress {
                            logger.info("listening on \(address) for \(server === servers.first ? "clients" : "peers")")
                        }
                    }
                    serving.addTask {
                        do {
                            try await server.serve()
                        } catch {
                            replica.stop()
                            throw error
                        }
                    }
                }
            }
            // The servers drained: stop talking to peers too.
            network.cancelAll()
        }
    }
}
