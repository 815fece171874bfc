import API
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import InlineGRPC
import Logging
import LogStore
import NIOExecutor
import NIOPosix
import NIOSSL
import Projections
import Raft
import Replica
import ServiceLifecycle

/// A node made and not yet running: its data directory opened, its Raft core, replica,
/// servers and services built from the configuration, in the order they depend on each
/// other. `ChorusNode.run` makes one and runs it; making is apart from running so that what a
/// node is made of can be built, and looked at, without a process around it.
struct NodeAssembly {
    let configuration: NodeConfiguration
    let logger: Logger
    let data: DataDirectory
    let replica: ChatReplica
    let current: CurrentState
    let hasher: PasswordHasher
    /// The node's services, each with what its end means for the rest.
    let group: ServiceGroupConfiguration
    /// What the start announces.
    let certificates: CertificateFiles?
    let clusterVersion: UInt32
    let applied: Index

    /// Builds the node on `loops`, which outlive it. Opening the data directory may refuse it
    /// (another cluster's, a newer format or cluster version): the refusal is thrown.
    init(configuration: NodeConfiguration, directory: MemberDirectory, loops: NodeLoops, logger: Logger) throws {
        let build = configuration.build
        let data = try DataDirectory(path: configuration.dataDirectory, clusterID: configuration.clusterID, clusterIncarnation: configuration.clusterIncarnation,
                                     nodeID: configuration.id, stateMap: MapLimits(initial: configuration.stateMapSize, maximum: configuration.stateMapMaximum), build: build)
        if let incarnation = data.clusterIncarnation {
            logger.info("cluster '\(configuration.clusterID)' runs as incarnation \(incarnation) (started from a backup or recovered): its nodes from before are refused")
        }
        let clusterName = ClusterName(id: configuration.clusterID, incarnation: data.clusterIncarnation)
        if !data.sharedWithOthers.isEmpty {
            let listed = data.sharedWithOthers.map { "\($0.path) (mode \(String($0.mode, radix: 8)))" }.joined(separator: ", ")
            logger.warning("other users can read or enter \(listed): the data directory holds password and session hashes; run `chmod -R go-rwx \(data.path)`")
        }
        if data.log.openedFormat == nil {
            logger.notice("the Raft log in \(data.log.path) predates format versions: it is format \(LogStore.format) and now says so")
        }
        if data.state.openedFormat == nil {
            logger.notice("the projections in \(data.state.environment.path) predate format versions: they are format \(FormatVersion.projections) and now say so")
        }
        let clusterVersion = max(try data.state.clusterVersion(), DataDirectory.markedClusterVersion(path: configuration.dataDirectory))
        guard clusterVersion <= build.maxClusterVersion else {
            let refusal = BuildTooOld(clusterVersion: clusterVersion, build: build, dataDirectory: configuration.dataDirectory)
            logger.critical("\(refusal)")
            throw refusal
        }
        let versions = PeerVersions(build: build, clusterVersion: clusterVersion)
        if clusterVersion > 1 { try DataDirectory.markClusterVersion(clusterVersion, path: configuration.dataDirectory) }
        if data.rebuiltAfterPowerLoss {
            logger.warning("node \(configuration.id) \(data.stoppedOnDiskFailure ? "stopped on a disk failure" : "did not stop cleanly on an earlier boot (power loss or a crash of the machine)"): its projections were rebuilt from the newest snapshot and are brought up to date from the log")
        }
        let bootstrap = try Bootstrap.prepare(data.log, configuration: configuration, logger: logger)
        let storage = LogStoreAdapter(store: data.log, bootstrap: bootstrap, logger: logger)
        var options = RaftOptions(id: configuration.id, seed: UInt64.random(in: 1...UInt64.max),
                                  electionTicks: configuration.electionTicks, heartbeatTicks: configuration.heartbeatTicks)
        options.applied = try data.state.lastApplied()
        let core = RaftCore(storage: storage, options: options)
        Bootstrap.compare(configuration, with: core.configuration, logger: logger)
        directory.update(core.configuration)
        let clientExecutor = EventLoopExecutor(loops.client)
        let peerExecutor = EventLoopExecutor(loops.peer.next())
        // One pair of certificate files behind every TLS context, read again on SIGHUP.
        let certificates = try configuration.tls.map { try CertificateFiles(certificate: $0.certificate, key: $0.key) }
        let metrics = NodeMetrics(node: configuration.id)
        let removal = RemovalNotice(id: configuration.id, directory: directory)
        let links = PeerLinks(configuration: configuration, clusterName: clusterName, directory: directory, incarnation: data.incarnation, certificates: certificates, snapshots: data.snapshots,
                              removal: removal, versions: versions, metrics: metrics, eventLoopGroup: loops.peer, logger: logger)
        let current = CurrentState(data.state)
        let machine = ChatMachine(current: current, stateDirectory: data.stateDirectory, dataDirectory: configuration.dataDirectory, subscriptionLimits: configuration.subscriptionLimits,
                                  versions: versions, logger: logger)
        let unsafeAckOnAppend = configuration.plantedBugs.acknowledgeOnAppend
        let replica = try ChatReplica(core: core, storage: storage, snapshots: data.snapshots, machine: machine, transport: links, options: configuration.replicaOptions,
                                      metrics: metrics.replica, handlers: EventLoopHomes(executor: clientExecutor), acknowledgeOnAppend: unsafeAckOnAppend ? ChatMachine.acknowledgeSendOnAppend : nil, logger: logger)
        let probe = ReadinessProbe(replica: replica, dataDirectory: configuration.dataDirectory)
        let requestMetrics = RequestMetrics(metrics: metrics)

        let hasher = PasswordHasher(threads: configuration.passwordThreads, maxWaiting: configuration.maxPasswordChecks)
        let chat = ChatService(replica: replica, current: current, configuration: configuration, hasher: hasher, metrics: metrics)
        let health = HealthService(probe: probe)
        let clientServices: [any RegistrableRPCService] = [chat, health]
        let incarnations = Incarnations(directory: configuration.dataDirectory)
        let peerServices: [any RegistrableRPCService] = [
            PeerService(replica: replica, clusterID: configuration.clusterID, clusterName: clusterName,
                        snapshots: SnapshotReceiver(store: data.snapshots, maxBytes: configuration.maxSnapshotBytes, logger: logger),
                        directory: directory, incarnations: incarnations, versions: versions,
                        authenticated: configuration.tls != nil, logger: logger),
            AdminService(replica: replica, configuration: configuration, directory: directory, incarnations: incarnations),
        ]
        let sizeLimit = RequestSizeLimit(limit: configuration.maxRequestBytes)
        // Clients are served on the inline transport (`InlineGRPC`): a call costs the node a
        // task, not a child channel and its pipeline. It checks each request's size itself.
        let role: Listener = configuration.peerListen == nil ? .both : .clients
        var clientConfig = configuration.inlineServerConfig(for: role, tls: try configuration.tls?.serverContext(reloading: certificates, mutual: false),
                                                            eventLoopGroup: loops.client, executor: clientExecutor)
        // Unary calls skip GRPCCore's executor; streams and the other services go through it.
        clientConfig.unaryHandlers = UnaryRoutes.routes(chat: chat, health: health, metrics: metrics)
        clientConfig.unaryRefused = { method, status, elapsed in
            metrics.calls(of: method.fullyQualifiedMethod, timed: true).record(RPCError.Code(status.code).flatMap { RequestMetrics.names[$0] } ?? "unknown", duration: elapsed)
        }
        let clientTransport = InlineServerTransport(clientConfig)
        let clientServer = GRPCServer(transport: clientTransport, services: role == .both ? clientServices + peerServices : clientServices, interceptors: [requestMetrics])
        var servers: [any Service] = []
        if let peerListen = configuration.peerListen {
            // The chat API is served here too, for web gateways: their certificate lets them
            // say which browser each call is for (`ChatService.source`).
            let peerServer = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: peerListen.host, port: peerListen.port), transportSecurity: .plaintext,
                                                                              config: configuration.serverConfig(for: .peers, tls: try configuration.tls?.serverContext(reloading: certificates, mutual: true)),
                                                                              eventLoopGroup: loops.peer),
                                        services: peerServices + [clientServices[0]],
                                        interceptorPipeline: [.apply(requestMetrics, to: .all), .apply(sizeLimit, to: .services([Chorus_V1_Chat.descriptor])),
                                                              .apply(ForwardedClient.Interceptor(clusterID: configuration.clusterID), to: .services([Chorus_V1_Chat.descriptor]))])
            // Other nodes' streams never end and a message cut short is sent again: no drain.
            servers.append(ServerService(peerServer, for: "peers", drainPeriod: .zero, executor: peerExecutor,
                                         listeningAddress: { try await peerServer.listeningAddress.map { "\($0)" } }, logger: logger))
        }
        // Subscriptions end at once, with UNAVAILABLE, so their clients move to another node
        // while unary calls and send streams have the drain period to finish.
        servers.append(ServerService(clientServer, for: "clients", drainPeriod: configuration.drainPeriod, executor: clientExecutor,
                                     listeningAddress: { "\(try await clientTransport.listeningAddress)" },
                                     beforeDrain: { [configuration] in
                                         // A leader hands over first, so writes pause for one
                                         // round trip instead of an election timeout.
                                         if let successor = await replica.handOverLeadership() {
                                             logger.info("node \(configuration.id) handed leadership to node \(successor) before stopping")
                                         }
                                         logger.info("node \(configuration.id) shutting down: subscriptions closed, client calls have \(configuration.drainPeriod) to finish")
                                         replica.machine.events.closeAll(.shuttingDown)
                                     }, logger: logger))
        // Graceful shutdown runs in reverse order: the client server drains first while the
        // peers and the replica still commit what its calls wait for; the replica stops last.
        let observability = configuration.metricsListen.flatMap { address in
            loops.observability.map { ObservabilityServer(address: address, metrics: metrics, probe: probe, current: current, events: replica.machine.events, eventLoop: $0, logger: logger) }
        }
        if let address = configuration.metricsListen {
            logger.info("metrics on http://\(address)/metrics, health on /healthz and /readyz")
        }
        let services: [any Service] = [PeerLinksService(links: links, executor: peerExecutor)]
            + servers + (certificates.map { [CertificateReloadService(files: $0, metrics: metrics, logger: logger)] } ?? [])
            + (observability.map { [$0] } ?? [])
            + [ClusterVersionFinalizer(replica: replica, versions: versions, logger: logger)]
        // The replica stops by itself only at an entry its build cannot apply: the node stops
        // as on a signal (the servers drain; cancelling them mid-stream is not clean), then
        // the group throws the replica's error.
        var group = ServiceGroupConfiguration(services: [.init(service: ReplicaService(replica: replica), failureTerminationBehavior: .gracefullyShutdownGroup)]
            + services.map { .init(service: $0) }
            // Learning it was removed ends the node, as a signal would.
            + [.init(service: RemovalService(notice: removal, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup)],
                                              logger: logger)
        // Past the grace period, shutdown turns into cancellation; a node still not stopped
        // after as long again is stuck, and ServiceGroup ends the process.
        group.maximumGracefulShutdownDuration = configuration.shutdownGracePeriod
        group.maximumCancellationDuration = configuration.shutdownGracePeriod

        self.configuration = configuration
        self.logger = logger
        self.data = data
        self.replica = replica
        self.current = current
        self.hasher = hasher
        self.group = group
        self.certificates = certificates
        self.clusterVersion = clusterVersion
        self.applied = options.applied
    }

    /// Runs every service until the node stops (a signal, its removal, an entry its build
    /// cannot apply, a failed disk), then records how it stopped: cleanly, or on a disk
    /// failure, which makes the next start rebuild the projections.
    func run() async throws {
        let build = configuration.build
        if let certificates {
            // Until the reload service traps it, a SIGHUP must not end the process.
            signal(SIGHUP, SIG_IGN)
            logger.info("TLS with \(certificates.certificatePath) (serial \(certificates.serial)); SIGHUP reloads it")
        }
        if configuration.tls == nil {
            logger.warning("RUNNING WITHOUT TLS (--insecure): anyone who reaches \(configuration.peerListen ?? configuration.listen) can speak as a peer, and passwords and tokens cross the network in clear. For development only.")
        }
        #if DEBUG
        if configuration.plantedBugs.oneVersionOlder {
            logger.warning("CHORUS_TEST_ONE_VERSION_OLDER set: this build applies cluster versions up to \(build.maxClusterVersion) only, as the release before it did (debug builds only)")
        }
        if !configuration.plantedBugs.names.isEmpty {
            logger.critical("\(configuration.plantedBugs.names.joined(separator: ", ")) set: this node has bugs planted on purpose and CAN LOSE OR CORRUPT DATA. They exist only to test the fault-injection checker (debug builds only).")
        }
        #endif
        logger.info("node \(configuration.id) of cluster '\(configuration.clusterID)' starting on \(configuration.listen), data in \(configuration.dataDirectory), last applied \(applied); release \(BuildVersions.release) applies cluster versions up to \(build.maxClusterVersion), the cluster runs \(clusterVersion)")
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            await hasher.shutdown()
            if error is StorageFailure {
                do {
                    try data.markDiskFailed()
                } catch {
                    logger.warning("the disk failure could not be recorded (\(error)); if the projections were damaged, remove \(configuration.dataDirectory)/state before starting the node again (it rebuilds them from the log)")
                }
            }
            throw error
        }
        await hasher.shutdown()
        try current.state.sync()
        do {
            try data.markCleanStop()
        } catch {
            logger.warning("the clean stop could not be recorded (\(error)); the next start rebuilds the projections from the log")
        }
        logger.info("node \(configuration.id) stopped")
    }
}

/// The event loops of one node, made before anything that serves on them and shut down
/// after all of it has ended: `--client-threads` loops for clients, one for peers, so that no
/// client load can hold up heartbeats and appends behind it, and one for metrics and health
/// when they are served. They run the gRPC handlers of their traffic as well
/// (`EventLoopExecutor`). The Raft loop has its own thread.
struct NodeLoops {
    let client: MultiThreadedEventLoopGroup
    let peer: MultiThreadedEventLoopGroup
    let observability: MultiThreadedEventLoopGroup?

    init(_ configuration: NodeConfiguration) {
        client = MultiThreadedEventLoopGroup(numberOfThreads: configuration.clientThreads)
        peer = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        observability = configuration.metricsListen.map { _ in MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    }

    func shutdown() {
        client.shutdownGracefully { _ in }
        peer.shutdownGracefully { _ in }
        observability?.shutdownGracefully { _ in }
    }
}
