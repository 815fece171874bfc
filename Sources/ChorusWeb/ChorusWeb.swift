import ArgumentParser
import Client
import ClusterPKI
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import WebGateway

/// `chorus-web`: the graphical client, served to browsers by a gateway in front of the cluster.
@main
struct ChorusWeb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-web",
        abstract: "Serve the Chorus web client: open the printed URL in a browser.",
        discussion: """
            The gateway talks to the cluster as the terminal client does (--endpoints or CHORUS_ENDPOINTS, \
            checked against --ca or CHORUS_CA, or the local cluster's data/certs/ca.pem), and serves the page \
            over TLS with --cert and --key (default: the local cluster's data/certs/web-local.pem). \
            SIGTERM or Ctrl-C stops it.
            """
    )

    @Option(help: "Address to serve browsers on (host:port).")
    var listen = "127.0.0.1:8080"

    @Option(help: "Cluster nodes as host:port,host:port,… (default: $CHORUS_ENDPOINTS or the local cluster).")
    var endpoints: String?

    @Option(help: """
        The nodes' peer listeners as host:port,… (default: $CHORUS_PEER_ENDPOINTS, or the local cluster's with its endpoints). \
        The gateway then calls the cluster there with its own certificate, which lets it name each browser's address: \
        the nodes' per-address limits (failed logins, say) then apply to each person, not to everyone behind the gateway.
        """)
    var peerEndpoints: String?

    @Option(help: "The cluster's CA certificate (default: $CHORUS_CA, or data/certs/ca.pem with the local cluster's endpoints).")
    var ca: String?

    @Option(help: "The gateway's certificate, signed by the cluster's CA (`chorus-tools certs web`).")
    var cert: String?

    @Option(help: "The gateway's private key.")
    var key: String?

    @Flag(help: "Plaintext everywhere: HTTP to browsers, and to a cluster run with --insecure. For trying it out on one machine only.")
    var insecure = false

    @Option(help: "Seconds one request keeps retrying while the cluster has no leader.")
    var timeout: Int = 15

    @Option(help: "Accounts one address may create per minute.")
    var accountsPerMinute = GatewayConfiguration.Limits().accountsPerMinute

    @Option(help: "Failed logins (and wrong passwords) one address may make per minute.")
    var failedLoginsPerMinute = GatewayConfiguration.Limits().failedLoginsPerMinute

    @Option(help: "Live connections (open pages) in all.")
    var liveConnections = GatewayConfiguration.Limits().liveConnections

    @Option(help: "Live connections (tabs) of one session.")
    var liveConnectionsPerSession = GatewayConfiguration.Limits().liveConnectionsPerSession

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    static let localCertificates = CertificateDirectory("data/certs")

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
        var logger = Logger(label: "chorus-web")
        logger.logLevel = level
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen wants host:port, not '\(listen)'")
        }
        var configuration = GatewayConfiguration()
        configuration.host = String(listen[..<colon])
        configuration.port = port
        for (name, value) in [("accounts-per-minute", accountsPerMinute), ("failed-logins-per-minute", failedLoginsPerMinute),
                              ("live-connections", liveConnections), ("live-connections-per-session", liveConnectionsPerSession)] where value < 1 {
            throw ValidationError("--\(name) must be at least 1")
        }
        configuration.limits.accountsPerMinute = accountsPerMinute
        configuration.limits.failedLoginsPerMinute = failedLoginsPerMinute
        configuration.limits.liveConnections = liveConnections
        configuration.limits.liveConnectionsPerSession = liveConnectionsPerSession
        var (cluster, security) = try clusterConnection()
        if insecure {
            logger.warning("serving plaintext HTTP (--insecure): passwords and session cookies cross the network unencrypted")
        } else {
            let certificate = try gatewayCertificate()
            configuration.tls = certificate
            if let peers = peerConnection() {
                (cluster, security) = (peers, .mutualTLS(certificate))
                configuration.forwardsClientAddresses = true
            } else {
                logger.warning("no --peer-endpoints: every browser shares this gateway's address in the nodes' per-address limits")
            }
        }
        let scheme = insecure ? "http" : "https"
        let nodes = cluster
        let host = configuration.host
        let settings = configuration
        try await withChorusClient(endpoints: nodes, deadline: .seconds(max(1, timeout)), security: security) { client in
            let app = try WebGateway.application(client: client, configuration: settings, logger: logger) { channel in
                let port = channel.localAddress?.port ?? port
                // On stderr, unbuffered: scripts wait for this line.
                FileHandle.standardError.write(Data("chorus-web: open \(scheme)://\(host):\(port)/ (cluster \(nodes.joined(separator: ",")))\n".utf8))
            }
            let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    /// The cluster's endpoints and how to check its certificates, as `chorus` finds them.
    func clusterConnection() throws -> ([String], ClientSecurity) {
        let environment = ProcessInfo.processInfo.environment
        let text = endpoints ?? environment["CHORUS_ENDPOINTS"]
        let list = (text ?? (7001...7005).map { "127.0.0.1:\($0)" }.joined(separator: ","))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty else { throw ValidationError("no cluster endpoints given") }
        if insecure { return (list, .plaintext) }
        if let path = ca ?? environment["CHORUS_CA"] { return (list, .tls(ca: path)) }
        guard text == nil, FileManager.default.fileExists(atPath: Self.localCertificates.ca) else {
            throw ValidationError("give the cluster's CA with --ca (or CHORUS_CA), or --insecure for a plaintext cluster")
        }
        return (list, .tls(ca: Self.localCertificates.ca))
    }

    /// The nodes' peer listeners, when given (or the local cluster's, for its endpoints).
    func peerConnection() -> [String]? {
        let environment = ProcessInfo.processInfo.environment
        if let text = peerEndpoints ?? environment["CHORUS_PEER_ENDPOINTS"] {
            let list = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return list.isEmpty ? nil : list
        }
        guard endpoints == nil, environment["CHORUS_ENDPOINTS"] == nil else { return nil }
        return (7101...7105).map { "127.0.0.1:\($0)" }
    }

    /// The certificate the page is served with, and the gateway's to the cluster.
    func gatewayCertificate() throws -> TLSFiles {
        let local = Self.localCertificates.web("local")
        let files = TLSFiles(ca: ca ?? local.ca, certificate: cert ?? local.certificate, key: key ?? local.key)
        guard FileManager.default.isReadableFile(atPath: files.certificate), FileManager.default.isReadableFile(atPath: files.key) else {
            throw ValidationError("cannot read the gateway's certificate \(files.certificate) and key \(files.key): issue them with `chorus-tools certs web --host …`, or serve plaintext with --insecure")
        }
        return files
    }
}
