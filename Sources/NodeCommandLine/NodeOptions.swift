import ArgumentParser
import ClusterPKI
import Foundation
import Logging
import Node

/// What `chorus-node run` is told on its command line, and the configuration and logger it
/// makes of it. A library of its own so that a test can start a node in its own process from
/// the very command line a harness gives a process (`Launcher.NodeCommand`).
public struct NodeOptions: ParsableArguments {
    @Option(help: "This node's id (a positive number, one of the --peer ids).") public var id: UInt64
    @Option(help: "Address clients reach this node on (Chat and health APIs), host:port.") public var listen: String
    @Option(help: "Address peers and operators reach this node on (Peer and Admin APIs, mutual TLS), host:port; --peer names these addresses.") public var peerListen: String?
    @Option(help: "The cluster's CA certificate (PEM).") public var ca: String?
    @Option(help: "This node's certificate (PEM), signed by the CA, naming chorus://CLUSTER/node/ID.") public var cert: String?
    @Option(help: "This node's private key (PEM).") public var key: String?
    @Flag(help: "Run without TLS: anyone who reaches a port can speak as a peer, and passwords cross the network in clear. For development only.") public var insecure = false
    @Option(name: .customLong("peer"), help: "A member of the cluster as ID=host:port, or ID=peerhost:port,clienthost:port with --peer-listen; repeat for each, this node included.")
    public var peers: [String] = []
    @Option(help: "A file with one ID=host:port per line, instead of (or with) --peer.") public var peersFile: String?
    @Option(help: "The data directory (created if missing).") public var dataDir: String
    @Flag(help: "Join a running cluster: start empty and wait until an operator adds this node (chorus-tools member add). Without it, an empty data directory bootstraps a new cluster of the --peer members. --peer then names the running members, so this node can answer the leader.") public var join = false
    @Option(help: "The cluster's name; data or peers of another cluster are refused. A cluster restored from a backup or recovered from a survivor is ID~INCARNATION for new members (chorus-tools recover and restore print it).") public var clusterID: String = "chorus"
    @Option(help: "Milliseconds per Raft tick.") public var tickMs: Int = 10
    @Option(help: "Election timeout in ticks.") public var electionTicks: Int = 15
    @Option(help: "Heartbeat interval in ticks.") public var heartbeatTicks: Int = 3
    @Option(help: "PBKDF2 rounds for new passwords.") public var passwordIterations: UInt32 = 210_000
    @Option(help: "Largest client request in bytes; a larger one gets RESOURCE_EXHAUSTED.") public var maxRequestBytes: Int = 256 << 10
    @Option(help: "Calls one connection may have open at once (clients queue the rest).") public var maxConcurrentStreams: Int = 1_024
    @Option(help: "Proposals admitted and not yet committed and answered; past it, writes get RESOURCE_EXHAUSTED.") public var maxPendingProposals: Int = 20_000
    @Option(help: "Bytes of those proposals.") public var maxPendingProposalBytes: Int = 64 << 20
    @Option(help: "Linearizable reads waiting to be served; past it, reads get RESOURCE_EXHAUSTED.") public var maxPendingReads: Int = 20_000
    @Option(help: "Events one subscription may have waiting; past it the stream ends and the client resumes.") public var subscriptionBufferEvents: Int = 1_024
    @Option(help: "Hours a session may go unused before it ends (0: no limit; fractions allowed).") public var sessionIdleHours: Double = 7 * 24
    @Option(help: "Hours a session lasts after login, however busy (0: no limit; fractions allowed).") public var sessionLifetimeHours: Double = 30 * 24
    @Option(help: "Failed password checks allowed per client address a minute.") public var failedLoginsPerMinute: Int = 30
    @Option(help: "Accounts one client address may create a minute.") public var accountCreationsPerMinute: Int = 120
    @Option(help: "Requests without a live session one client address may make a minute.") public var unauthenticatedPerMinute: Int = 120
    @Option(help: "Threads that hash passwords.") public var passwordThreads: Int = 1
    @Option(help: "Event loop threads serving clients (each connection stays on one; default: the cores, at most 8).") public var clientThreads: Int = NodeConfiguration.defaultClientThreads
    @Option(help: "Password checks admitted at once, running and waiting.") public var maxPasswordChecks: Int = 32
    @Option(help: "Applied entries between automatic snapshots (0: only on request).") public var snapshotInterval: UInt64 = 20_000
    @Option(help: "Log entries kept behind a snapshot for followers a little behind.") public var snapshotKeep: UInt64 = 5_000
    @Option(help: "Largest snapshot file accepted from a leader, in bytes.") public var maxSnapshotBytes: UInt64 = 16 << 30
    @Option(help: "The projections' memory map at start (e.g. 64MiB, 1GiB); it doubles whenever it fills. With it the data file's apparent size.") public var stateMapSize: String = "64MiB"
    @Option(help: "The most the projections' map may grow to (e.g. 1TiB); past it a write fails like a full disk and the node stops.") public var stateMapMax: String = "1TiB"
    @Option(help: "Free space the data directory's file systems must keep (e.g. 64MiB, 1GiB); below it the node stops cleanly, before a write runs out of space.") public var minFreeSpace: String = "64MiB"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") public var logLevel: String = "info"
    @Option(help: "Log format: text (one readable line per event) or json (one object per line, for log shippers).") public var logFormat: String = "text"
    @Option(help: "Serve Prometheus metrics (/metrics) and HTTP health (/healthz, /readyz) on host:port, plain HTTP; off unless given.") public var metricsListen: String?


    public init() {}

    /// The node's configuration, with the bugs a debug build's test plants (`PlantedNodeBugs`;
    /// none in a release build): the binary's come from its environment, a node in a test
    /// process is given its own.
    public func configuration(plantedBugs: PlantedNodeBugs = PlantedNodeBugs()) throws -> NodeConfiguration {
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
        configuration.plantedBugs = plantedBugs
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
        return configuration
    }

    /// The node's logger at `--log-level`, its lines in `--log-format`, handled by what `make`
    /// gives for a format and a label (standard error for `chorus-node run`).
    public func logger(_ make: (LogFormat, String) -> any LogHandler = { $0.handler(label: $1) }) throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        guard let format = LogFormat(rawValue: logFormat) else { throw ValidationError("--log-format '\(logFormat)' is not text or json") }
        var logger = Logger(label: "chorus.node.\(id)") { label in make(format, label) }
        logger.logLevel = level
        // The text line names the node in its label already; a JSON line carries it as a field.
        if format == .json { logger[metadataKey: "node"] = "\(id)" }
        return logger
    }
}
