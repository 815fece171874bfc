import ArgumentParser
import ClusterPKI
import Dispatch
import Foundation
import Launcher
import Logging
import LogStore
import Node
import Projections
import Raft
import Replica
import ServiceLifecycle

/// `chorus-node`: the Chorus daemon.
@main
struct ChorusNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-node",
        abstract: "Run a Chorus node, or a local cluster of them.",
        subcommands: [Run.self, LocalClusterCommand.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run one node of a cluster.")

    @Option(help: "This node's id (a positive number, one of the --peer ids).") var id: UInt64
    @Option(help: "Address clients reach this node on (Chat and health APIs), host:port.") var listen: String
    @Option(help: "Address peers and operators reach this node on (Peer and Admin APIs, mutual TLS), host:port; --peer names these addresses.") var peerListen: String?
    @Option(help: "The cluster's CA certificate (PEM).") var ca: String?
    @Option(help: "This node's certificate (PEM), signed by the CA, naming chorus://CLUSTER/node/ID.") var cert: String?
    @Option(help: "This node's private key (PEM).") var key: String?
    @Flag(help: "Run without TLS: anyone who reaches a port can speak as a peer, and passwords cross the network in clear. For development only.") var insecure = false
    @Option(name: .customLong("peer"), help: "A member of the cluster as ID=host:port, or ID=peerhost:port,clienthost:port with --peer-listen; repeat for each, this node included.")
    var peers: [String] = []
    @Option(help: "A file with one ID=host:port per line, instead of (or with) --peer.") var peersFile: String?
    @Option(help: "The data directory (created if missing).") var dataDir: String
    @Flag(help: "Join a running cluster: start empty and wait until an operator adds this node (chorus-tools member add). Without it, an empty data directory bootstraps a new cluster of the --peer members. --peer then names the running members, so this node can answer the leader.") var join = false
    @Option(help: "The cluster's name; data or peers of another cluster are refused. A cluster restored from a backup or recovered from a survivor is ID~INCARNATION for new members (chorus-tools recover and restore print it).") var clusterID: String = "chorus"
    @Option(help: "Milliseconds per Raft tick.") var tickMs: Int = 10
    @Option(help: "Election timeout in ticks.") var electionTicks: Int = 15
    @Option(help: "Heartbeat interval in ticks.") var heartbeatTicks: Int = 3
    @Option(help: "PBKDF2 rounds for new passwords.") var passwordIterations: UInt32 = 210_000
    @Option(help: "Largest client request in bytes; a larger one gets RESOURCE_EXHAUSTED.") var maxRequestBytes: Int = 256 << 10
    @Option(help: "Calls one connection may have open at once (clients queue the rest).") var maxConcurrentStreams: Int = 1_024
    @Option(help: "Proposals admitted and not yet committed and answered; past it, writes get RESOURCE_EXHAUSTED.") var maxPendingProposals: Int = 20_000
    @Option(help: "Bytes of those proposals.") var maxPendingProposalBytes: Int = 64 << 20
    @Option(help: "Linearizable reads waiting to be served; past it, reads get RESOURCE_EXHAUSTED.") var maxPendingReads: Int = 20_000
    @Option(help: "Events one subscription may have waiting; past it the stream ends and the client resumes.") var subscriptionBufferEvents: Int = 1_024
    @Option(help: "Hours a session may go unused before it ends (0: no limit; fractions allowed).") var sessionIdleHours: Double = 7 * 24
    @Option(help: "Hours a session lasts after login, however busy (0: no limit; fractions allowed).") var sessionLifetimeHours: Double = 30 * 24
    @Option(help: "Failed password checks allowed per client address a minute.") var failedLoginsPerMinute: Int = 30
    @Option(help: "Accounts one client address may create a minute.") var accountCreationsPerMinute: Int = 120
    @Option(help: "Requests without a live session one client address may make a minute.") var unauthenticatedPerMinute: Int = 120
    @Option(help: "Threads that hash passwords.") var passwordThreads: Int = 1
    @Option(help: "Event loop threads serving clients (each connection stays on one; default: the cores, at most 8).") var clientThreads: Int = NodeConfiguration.defaultClientThreads
    @Option(help: "Password checks admitted at once, running and waiting.") var maxPasswordChecks: Int = 32
    @Option(help: "Applied entries between automatic snapshots (0: only on request).") var snapshotInterval: UInt64 = 20_000
    @Option(help: "Log entries kept behind a snapshot for followers a little behind.") var snapshotKeep: UInt64 = 5_000
    @Option(help: "Largest snapshot file accepted from a leader, in bytes.") var maxSnapshotBytes: UInt64 = 16 << 30
    @Option(help: "The projections' memory map at start (e.g. 64MiB, 1GiB); it doubles whenever it fills. With it the data file's apparent size.") var stateMapSize: String = "64MiB"
    @Option(help: "The most the projections' map may grow to (e.g. 1TiB); past it a write fails like a full disk and the node stops.") var stateMapMax: String = "1TiB"
    @Option(help: "Free space the data directory's file systems must keep (e.g. 64MiB, 1GiB); below it the node stops cleanly, before a write runs out of space.") var minFreeSpace: String = "64MiB"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"
    @Option(help: "Log format: text (one readable line per event) or json (one object per line, for log shippers).") var logFormat: String = "text"
    @Option(help: "Serve Prometheus metrics (/metrics) and HTTP health (/healthz, /readyz) on host:port, plain HTTP; off unless given.") var metricsListen: String?

    func run() async throws {
        // Data directories hold password and session hashes: whatever the node creates is
        // readable by its user only, whatever the caller's umask.
        umask(0o077)
        var specs = peers
        if let peersFile {
            let text = try String(contentsOfFile: peersFile, encoding: .utf8)
            specs += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        guard let address = PeerAddress(listen) else { throw ValidationError("--listen '\(listen)' is not host:port") }
        let peerAddress = try peerListen.map { spec in
            guard let address = PeerAddress(spec) else { throw ValidationError("--peer-listen '\(spec)' is not host:port") }
            return address
        }
        let tls: TLSFiles?
        switch (ca, cert, key, insecure) {
        case let (ca?, cert?, key?, false): tls = TLSFiles(ca: ca, certificate: cert, key: key)
        case (nil, nil, nil, true): tls = nil
        case (_, _, _, true): throw ValidationError("--insecure runs without TLS: drop --ca, --cert and --key, or drop --insecure")
        default: throw ValidationError("give --ca, --cert and --key (see `chorus-tools certs`), or --insecure to run without TLS")
        }
        let members = try NodeConfiguration.parseMembers(specs)
        let cluster = clusterID.lastIndex(of: "~").map { (String(clusterID[..<$0]), Optional(String(clusterID[clusterID.index(after: $0)...]))) } ?? (clusterID, nil)
        var configuration = NodeConfiguration(id: id, listen: address, members: members.peers, dataDirectory: dataDir, clusterID: cluster.0)
        configuration.clusterIncarnation = cluster.1
        configuration.clientAddresses = members.clients
        configuration.peerListen = peerAddress
        configuration.tls = tls
        configuration.join = join
        configuration.plantedBugs = PlantedNodeBugs.fromEnvironment()
        configuration.tickInterval = .milliseconds(tickMs)
        configuration.electionTicks = electionTicks
        configuration.heartbeatTicks = heartbeatTicks
        configuration.passwordIterations = passwordIterations
        configuration.maxRequestBytes = maxRequestBytes
        configuration.maxConcurrentStreams = maxConcurrentStreams
        configuration.maxPendingProposals = maxPendingProposals
        configuration.maxPendingProposalBytes = maxPendingProposalBytes
        configuration.maxPendingReads = maxPendingReads
        guard (0...100 * 365 * 24).contains(sessionIdleHours), (0...100 * 365 * 24).contains(sessionLifetimeHours) else {
            throw ValidationError("--session-idle-hours and --session-lifetime-hours must be 0 to 876000")
        }
        configuration.sessionIdle = .milliseconds(Int64((sessionIdleHours * 3_600_000).rounded()))
        configuration.sessionLifetime = .milliseconds(Int64((sessionLifetimeHours * 3_600_000).rounded()))
        guard (1...1 << 20).contains(subscriptionBufferEvents) else { throw ValidationError("--subscription-buffer-events must be 1 to \(1 << 20)") }
        configuration.subscriptionLimits.events = subscriptionBufferEvents
        configuration.failedLoginsPerMinute = failedLoginsPerMinute
        configuration.accountCreationsPerMinute = accountCreationsPerMinute
        configuration.unauthenticatedPerMinute = unauthenticatedPerMinute
        configuration.passwordThreads = passwordThreads
        configuration.clientThreads = clientThreads
        configuration.maxPasswordChecks = maxPasswordChecks
        configuration.snapshotInterval = snapshotInterval
        configuration.snapshotTrailingEntries = snapshotKeep
        configuration.maxSnapshotBytes = maxSnapshotBytes
        guard let mapSize = NodeConfiguration.parseByteSize(stateMapSize), mapSize >= 1 << 20 else {
            throw ValidationError("--state-map-size '\(stateMapSize)' is not a size of at least 1MiB (e.g. 64MiB, 1GiB)")
        }
        guard let mapMax = NodeConfiguration.parseByteSize(stateMapMax), mapMax >= mapSize else {
            throw ValidationError("--state-map-max '\(stateMapMax)' is not a size at least --state-map-size (e.g. 1TiB)")
        }
        guard let minFree = NodeConfiguration.parseByteSize(minFreeSpace) else {
            throw ValidationError("--min-free-space '\(minFreeSpace)' is not a size (e.g. 64MiB, 1GiB)")
        }
        configuration.minimumFreeSpace = UInt64(minFree)
        configuration.stateMapSize = mapSize
        configuration.stateMapMaximum = mapMax

        if let metricsListen {
            guard let address = PeerAddress(metricsListen) else { throw ValidationError("--metrics-listen '\(metricsListen)' is not host:port") }
            configuration.metricsListen = address
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard let format = LogFormat(rawValue: logFormat) else { throw ValidationError("--log-format '\(logFormat)' is not text or json") }
        var logger = Logger(label: "chorus.node.\(id)") { label in format.handler(label: label) }
        logger.logLevel = level
        // The text line names the node in its label already; a JSON line carries it as a field.
        if format == .json { logger[metadataKey: "node"] = "\(id)" }
        let node: ChorusNode
        do {
            node = try ChorusNode(configuration: configuration, logger: logger)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        // The node also ends by itself (when the cluster removed it): a normal exit.
        var services = ServiceGroupConfiguration(services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger)
        services.gracefulShutdownSignals = [.sigterm, .sigint]
        let group = ServiceGroup(configuration: services)
        do {
            try await group.run()
        } catch let error as UnknownEntry {
            // Said at critical level already; the exit status tells a supervisor not to
            // restart this binary on this data: it needs another build.
            _ = error
            throw ExitCode(Self.needsAnotherBuild)
        } catch is InvariantViolation {
            throw ExitCode(InvariantViolation.exitStatus)
        } catch is StorageFailure {
            // Said at critical level already, with what to fix.
            throw ExitCode(StorageFailure.exitStatus)
        } catch is BuildTooOld {
            throw ExitCode(Self.needsAnotherBuild)
        } catch let error as NewerFormat {
            logger.critical("\(error)")
            throw ExitCode(Self.needsAnotherBuild)
        } catch let error as LogStoreError {
            guard case .newerFormat = error else { throw error }
            logger.critical("\(error)")
            throw ExitCode(Self.needsAnotherBuild)
        }
    }

    /// The exit status of a node whose build cannot apply its log (EX_CONFIG).
    static let needsAnotherBuild: Int32 = 78
}

struct LocalClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "local-cluster", abstract: "Start a cluster on loopback and watch its leader.")

    @Option(help: "Number of nodes.") var nodes: Int = 5
    @Option(help: "Loopback address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port of node 1; node N listens on base + N - 1.") var basePort: Int = 7001
    @Option(help: "Where the nodes keep their data.") var dataDir: String = "data"
    @Flag(help: "Run plaintext (no certificates); every node warns at start.") var insecure = false
    @Flag(help: "Start again any node that dies (SIGKILL, a crash); one that stops cleanly stays down.") var restart = false
    @Argument(parsing: .postTerminator, help: "Options after `--` go to every node's `run` (e.g. `-- --account-creations-per-minute 1000`).")
    var nodeOptions: [String] = []

    func run() async throws {
        // Data directories hold password and session hashes: whatever the node creates is
        // readable by its user only, whatever the caller's umask.
        umask(0o077)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let cluster = LocalCluster(size: nodes, host: host, basePort: basePort, dataDirectory: dataDir, executable: executable,
                                   extraArguments: nodeOptions, insecure: insecure, restart: restart)
        // Ctrl-C or SIGTERM stops the watcher, which then stops every node with SIGTERM.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let task = Task { try await cluster.run() }
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        do {
            try await task.value
        } catch is CancellationError {}
    }
}
