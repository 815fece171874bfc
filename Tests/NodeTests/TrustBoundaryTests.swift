import API
import Client
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOSSL
import Projections
import Synchronization
import Testing
import X509

/// The trust boundary of a cluster run with TLS: clients reach the client listener over TLS,
/// only the cluster's nodes speak on the peer listener, each only as itself, and only
/// operators reach the Admin API.
extension EdgeTests {
    @Test func tlsClusterServesAndOnlyItsNodesSpeakAsThemselves() async throws {
        let cluster = try TestCluster(size: 3, tls: true, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(15)) { client in
            // The whole chat path works over TLS, the client checking the nodes' certificates.
            let alice = try await client.newUser("alice", password: "pw")
            let bob = try await client.newUser("bob", password: "pw")
            _ = try await client.send(token: alice, to: "bob", body: "over tls")
            #expect(try await client.history(token: bob, with: "alice", pageSize: 5).messages.map(\.body) == ["over tls"])
            try await cluster.waitForConvergence(client)
            let clusterID = "test"
            let target = 1

            func peerStream(_ security: HTTP2ClientTransport.Posix.TransportSecurity, from sender: UInt64) async -> RPCError.Code? {
                let parts = cluster.peerAddress(target).split(separator: ":")
                do {
                    let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: String(parts[0]), port: Int(parts[1])!), transportSecurity: security)
                    try await withGRPCClient(transport: transport) { raw in
                        var options = CallOptions.defaults
                        options.timeout = .seconds(5)
                        _ = try await Chorus_V1_Peer.Client(wrapping: raw).stream(request: StreamingClientRequest { writer in
                            try await writer.write(.with {
                                $0.clusterID = clusterID
                                $0.senderBuild = .with { $0.maxClusterVersion = BuildVersions.current.maxClusterVersion }
                                $0.messages = [.with { $0.from = sender; $0.to = UInt64(target); $0.term = 1; $0.heartbeat = .with { $0.commit = 0 } }]
                            })
                        }, options: options)
                    }
                    return nil
                } catch let error as RPCError {
                    return error.code
                } catch {
                    return .unknown
                }
            }

            // No certificate, plaintext, a certificate of another CA: no stream at all.
            let caOnly = HTTP2ClientTransport.Posix.TransportSecurity.tls {
                $0.trustRoots = .certificates([.file(path: cluster.credentials(2).ca, format: .pem)])
                $0.serverCertificateVerification = .noHostnameVerification
            }
            #expect(await peerStream(caOnly, from: 2) != nil)
            #expect(await peerStream(.plaintext, from: 2) != nil)
            let stranger = try TestCluster(size: 3, tls: true)
            #expect(await peerStream(stranger.credentials(2).mutualClientSecurity(), from: 2) != nil)
            // Node 2's certificate speaking as node 3 ends its stream.
            #expect(await peerStream(cluster.credentials(2).mutualClientSecurity(), from: 3) == .permissionDenied)
            // As itself it is heard (an old heartbeat of term 1: ignored, not refused).
            #expect(await peerStream(cluster.credentials(2).mutualClientSecurity(), from: 2) == nil)
            #expect(cluster.log(target).contains("node 2's certificate sent a message as node 3"))

            // A plaintext client on the TLS client listener gets an error that says why.
            let plaintext = await cluster.withPlaintextClient { client in
                do { _ = try await client.login(name: "alice", password: "pw"); return "" } catch { return "\(error)" }
            }
            #expect(plaintext.hasSuffix("(if the cluster runs TLS, give its CA: --ca or CHORUS_CA)"), "\(plaintext)")

            // Admin: a node's certificate is refused, an operator's accepted.
            let refused = await failure {
                _ = try await takeSnapshot(endpoint: cluster.peerAddress(target), operator: cluster.credentials(2), timeout: .seconds(10))
            }
            #expect(refused == .other("\(cluster.peerAddress(target)): the Admin API needs an operator certificate of cluster 'test' (see `chorus-tools certs operator`)"))
            let taken = try await takeSnapshot(endpoint: cluster.peerAddress(target), operator: cluster.credentials(0), timeout: .seconds(30))
            #expect(taken.index > 0)

            // Still serving, and every node alive.
            _ = try await client.send(token: alice, to: "bob", body: "still here")
            for id in cluster.ids { #expect(cluster.isRunning(id)) }
            #expect(!cluster.log(1).contains("RUNNING WITHOUT TLS"))
        }
    }

    @Test func sighupReloadsTheCertificateAndABrokenOneIsRefused() async throws {
        let cluster = try TestCluster(size: 3, tls: true)
        try cluster.startAll()
        let directory = CertificateDirectory(cluster.certificates)
        try await cluster.withClient { client in
            _ = try await client.newUser("alice", password: "pw")
        }
        // A renewed certificate for node 1, then SIGHUP.
        let (renewed, key) = try directory.issuer().issue(.node(cluster: "test", id: 1), hosts: [cluster.host], days: 30)
        try Issuer.write(certificate: renewed, key: key, certificatePath: directory.node(1).certificate, keyPath: directory.node(1).key)
        let serial = Array(renewed.serialNumber.bytes).map { String($0, radix: 16) }.joined()
        cluster.signal(1, SIGHUP)
        try await cluster.waitForLog(1, containing: "SIGHUP: reloaded \(directory.node(1).certificate) (serial \(serial))")
        // New connections to node 1 (a new client) get through with the renewed certificate.
        try await cluster.withClient { client in
            _ = try await client.login(name: "alice", password: "pw")
            #expect(await client.status().compactMap(\.status).count == 3)
        }
        // A certificate file that cannot be read is refused and the pair in use stays.
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: directory.node(1).certificate))
        cluster.signal(1, SIGHUP)
        try await cluster.waitForLog(1, containing: "SIGHUP: cannot reload the certificate, keeping serial \(serial)")
        try await cluster.withClient { client in
            _ = try await client.login(name: "alice", password: "pw")
        }
        #expect(cluster.isRunning(1))
    }

    /// Every node's certificate renewed and taken with SIGHUP, one node after another, while a
    /// client writes on the connections it had and new clients connect: no request fails, new
    /// connections are shown the renewed certificates, and every write arrived once.
    @Test func aRotationUnderLoadFailsNoRequest() async throws {
        let cluster = try TestCluster(size: 3, tls: true)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let directory = CertificateDirectory(cluster.certificates)
        try await cluster.withClient(deadline: .seconds(20)) { client in
            _ = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice", password: "pw")
            _ = try await client.newUser("bob", password: "pw")
            // New connections log in as a third account: a user keeps at most
            // `Validation.maxSessionsPerUser` sessions, and logging in as alice that often
            // would end the session her sends use.
            _ = try await client.newUser("carol", password: "pw")
            let load = LoadState()
            let (sent, logins) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                group.addTask {
                    var sent = 0
                    while load.running.withLock({ $0 }) {
                        do {
                            _ = try await client.send(token: alice, to: "bob", body: "during rotation \(sent)")
                            sent += 1
                        } catch { load.failures.withLock { $0.append("send: \(error)") } }
                    }
                    return (sent, 0)
                }
                group.addTask {
                    var logins = 0
                    while load.running.withLock({ $0 }) {
                        do {
                            _ = try await cluster.withClient(deadline: .seconds(20)) { fresh in try await fresh.login(name: "carol", password: "pw") }
                            logins += 1
                        } catch { load.failures.withLock { $0.append("new connection: \(error)") } }
                    }
                    return (0, logins)
                }
                defer { load.running.withLock { $0 = false } }
                for id in cluster.ids {
                    let renewed = try await runTool(["certs", "renew", "--dir", cluster.certificates, "--cluster", "test", "--node", "\(id)", "--days", "400"])
                    #expect(renewed.status == 0, "\(renewed.output)")
                    let certificate = try Certificate(pemEncoded: try Issuer.read(directory.node(UInt64(id)).certificate))
                    cluster.signal(id, SIGHUP)
                    try await cluster.waitForLog(id, containing: "SIGHUP: reloaded \(directory.node(UInt64(id)).certificate)")
                    for address in [cluster.address(id), cluster.peerAddress(id)] {
                        #expect(try await TLSProbe.serial(address, ca: directory.ca) == Array(certificate.serialNumber.bytes), "\(address)")
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                load.running.withLock { $0 = false }
                return try await group.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            }
            #expect(load.failures.withLock { $0 }.isEmpty, "\(load.failures.withLock { $0 })")
            #expect(sent > 10 && logins > 2, "sent \(sent), logins \(logins)")
            // Every write arrived, once: bob has read none of them.
            #expect(try await client.login(name: "bob", password: "pw").unreadCount == UInt64(sent))
        }
        for id in cluster.ids { #expect(cluster.isRunning(id)) }
    }

    /// A certificate within 30 days of its expiry: warned about at start, its expiry a metric
    /// (the shipped alert fires on it), renewed by `certs renew` for the same node and names,
    /// taken with SIGHUP, and the metric moves.
    @Test func aCertificateNearItsExpiryIsWarnedAboutMeasuredAndRenewed() async throws {
        let cluster = try TestCluster(size: 1, tls: true)
        cluster.metrics = true
        let directory = CertificateDirectory(cluster.certificates)
        let (short, key) = try directory.issuer().issue(.node(cluster: "test", id: 1), hosts: [cluster.host], days: 10)
        try Issuer.write(certificate: short, key: key, certificatePath: directory.node(1).certificate, keyPath: directory.node(1).key)
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        try await cluster.waitForLog(1, containing: "the certificate \(directory.node(1).certificate) (serial ")
        // Ten days from issue, to the second the certificate holds (its time may round up).
        #expect(cluster.log(1).contains(/expires at [0-9TZ:-]+, in (9|10) days: renew it \(chorus-tools certs renew\) and send SIGHUP/), "\(cluster.log(1).suffix(2_000))")
        func expiry() async throws -> Double? {
            let metrics = try await httpGet(cluster.metricsAddress(1), "/metrics").body
            return metrics.split(separator: "\n").first { $0.hasPrefix("chorus_certificate_expiry_timestamp_seconds ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(try await expiry() == short.notValidAfter.timeIntervalSince1970.rounded(.down))

        let renewed = try await runTool(["certs", "renew", "--dir", cluster.certificates, "--cluster", "test", "--node", "1", "--days", "400"])
        #expect(renewed.status == 0 && renewed.output.contains("renewed \(directory.node(1).certificate) for chorus://test/node/1 (\(cluster.host))"), "\(renewed.output)")
        let certificate = try Certificate(pemEncoded: try Issuer.read(directory.node(1).certificate))
        #expect(certificate.notValidAfter.timeIntervalSinceNow > 399 * 86_400)
        cluster.signal(1, SIGHUP)
        try await cluster.waitForLog(1, containing: "SIGHUP: reloaded \(directory.node(1).certificate)")
        #expect(try await expiry() == certificate.notValidAfter.timeIntervalSince1970.rounded(.down))
        // New connections get through with the renewed certificate.
        try await cluster.withClient { client in _ = try await client.newUser("alice") }
    }

    /// Both listeners: TLS 1.3 for a client that has it; TLS 1.2 only with ECDHE and an AEAD
    /// cipher. NIOSSL's defaults, which the gRPC transport used, also accept CBC suites with
    /// SHA-1 MACs and static RSA key exchange.
    @Test func listenersSpeakTLS13AndOnlyAEADSuitesOfTLS12() async throws {
        let cluster = try TestCluster(size: 1, tls: true, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let ca = "\(cluster.certificates)/ca.pem"
        let weak: [NIOTLSCipher] = [.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, .TLS_RSA_WITH_AES_128_GCM_SHA256, .TLS_RSA_WITH_AES_128_CBC_SHA]
        for (address, certificate) in [(cluster.address(1), nil), (cluster.peerAddress(1), cluster.credentials(0))] {
            #expect(try await TLSProbe.handshake(address, ca: ca, certificate: certificate) == .negotiated(.tlsv13), "\(address)")
            for suite in [NIOTLSCipher.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256] {
                #expect(try await TLSProbe.handshake(address, ca: ca, certificate: certificate, maximum: .tlsv12, suites: [suite]) == .negotiated(.tlsv12), "\(address) \(suite)")
            }
            for suite in weak {
                #expect(try await TLSProbe.handshake(address, ca: ca, certificate: certificate, maximum: .tlsv12, suites: [suite]) == .refused, "\(address) \(suite)")
            }
            // A TLS 1.1 client is refused.
            #expect(try await TLSProbe.handshake(address, ca: ca, certificate: certificate, maximum: .tlsv11) == .refused, "\(address)")
        }
        // The node still serves, and a peer-listener call still knows its caller.
        let taken = try await takeSnapshot(endpoint: cluster.peerAddress(1), operator: cluster.credentials(0), timeout: .seconds(30))
        #expect(taken.index > 0)
    }

    @Test func insecureNodesWarnLoudly() async throws {
        let cluster = try TestCluster(size: 1, tls: false, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await client.newUser("alice", password: "pw")
        }
        #expect(cluster.log(1).contains("RUNNING WITHOUT TLS (--insecure)"))
    }

    @Test func aNodeRefusesACertificateThatIsNotItsOwn() async throws {
        let cluster = try TestCluster(size: 3, tls: true)
        cluster.extraArguments = []
        // Node 1 started with node 2's certificate.
        var command = cluster.command(1)
        command.tls?.certificate = cluster.credentials(2).certificate
        command.tls?.key = cluster.credentials(2).key
        let (status, output) = try await runNode(command.arguments)
        #expect(status != 0)
        #expect(output.contains("is the certificate of node 2 of cluster 'test', not of node 1"))
    }
}

/// Whether a test's load still runs, and what failed in it.
private final class LoadState: Sendable {
    let running = Mutex(true)
    let failures = Mutex<[String]>([])
}

extension TestCluster {
    func waitForLog(_ id: Int, containing text: String, within: Duration = .seconds(10)) async throws {
        let end = ContinuousClock.now + within
        while !log(id).contains(text) {
            guard ContinuousClock.now < end else { throw TestFailure("node \(id) never logged '\(text)':\n\(log(id).suffix(1_500))") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A client that talks plaintext to this cluster whatever its mode.
    func withPlaintextClient<R: Sendable>(_ body: (ChorusClient) async throws -> R) async rethrows -> R {
        try await withTaskExecutorPreference(Self.clientExecutor) {
            try await withChorusClient(endpoints: endpoints, deadline: .seconds(3), security: .plaintext, body)
        }
    }
}
