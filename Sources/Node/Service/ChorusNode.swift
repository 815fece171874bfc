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

/// A running Chorus node: the data directory, the replica loop, the peer links, a gRPC server
/// for clients and one for peers, composed as a `ServiceGroup` of their own. The node is a
/// `Service` itself and inherits its graceful shutdown from the group that runs it (SIGTERM or
/// SIGINT in `chorus-node run`). SIGKILL loses nothing acknowledged, since nothing is
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
        let clientServer: GRPCServer<HTTP2ServerTransport.Posix>
        var servers: [ServerService] = []
        if let peerListen = configuration.peerListen {
            clientServer = GRPCServer(transport: listener(configuration.listen, configuration.tls?.serverSecurity(reloading: certificates) ?? .plaintext), services: clientServices)
            let peerServer = GRPCServer(transport: listener(peerListen, configuration.tls?.mutualServerSecurity(reloading: certificates) ?? .plaintext), services: peerServices)
            // Other nodes' streams never end and a message cut short is sent again: no drain.
            servers.append(ServerService(peerServer, for: "peers", drainPeriod: .zero, logger: logger))
        } else {
            clientServer = GRPCServer(transport: listener(configuration.listen, .plaintext), services: clientServices + peerServices)
        }
        // Subscriptions end at once, with UNAVAILABLE, so their clients move to another node
        // while unary calls and send streams have the drain period to finish.
        servers.append(ServerService(clientServer, for: "clients", drainPeriod: configuration.drainPeriod,
                                     beforeDrain: { [configuration] in
                                         logger.info("node \(configuration.id) shutting down: subscriptions closed, client calls have \(configuration.drainPeriod) to finish")
                                         replica.events.closeAll(.shuttingDown)
                                     }, logger: logger))

        if let certificates {
            // Until the reload service traps it, a SIGHUP must not end the process.
            signal(SIGHUP, SIG_IGN)
            logger.info("TLS with \(certificates.certificatePath) (serial \(certificates.serial)); SIGHUP reloads it")
        }
        if configuration.tls == nil {
            logger.warning("RUNNING WITHOUT TLS (--insecure): anyone who reaches \(configuration.peerListen ?? configuration.listen) can speak as a peer, and passwords and tokens cross the network in clear. For development only.")
        }
        if Replica.Loop.unsafeAckOnAppend {
            logger.critical("CHORUS_UNSAFE_ACK_ON_APPEND is set: sends are acknowledged before they commit and CAN BE LOST. This exists only to test the fault-injection checker.")
        }
        logger.info("node \(configuration.id) of cluster '\(configuration.clusterID)' starting on \(configuration.listen), data in \(configuration.dataDirectory), last applied \(options.applied)")

        // Graceful shutdown runs in reverse order: the client server drains first while the
        // peers and the replica still commit what its calls wait for; the replica stops last.
        let services: [any Service] = [ReplicaService(replica: replica), PeerLinksService(links: links)]
            + servers + (certificates.map { [CertificateReloadService(files: $0, logger: logger)] } ?? [])
        var group = ServiceGroupConfiguration(services: services, logger: logger)
        // Past the grace period, shutdown turns into cancellation; a node still not stopped
        // after as long again is stuck, and ServiceGroup ends the process.
        group.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        group.maximumCancellationDuration = configuration.shutdownGracePeriod
        try await withTaskExecutorPreference(executor) {
            try await ServiceGroup(configuration: group).run()
        }
        try current.state.sync()
        logger.info("node \(configuration.id) stopped")
    }
}
