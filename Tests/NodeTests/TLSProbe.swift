import ClusterPKI
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One TLS handshake with a listener, made as a client limited to the given versions and
/// suites would make it; nothing is sent after it.
enum TLSProbe {
    enum Outcome: Equatable, Sendable {
        case negotiated(TLSVersion)
        case refused
    }

    static func handshake(_ address: String, ca: String, certificate: TLSFiles? = nil, maximum: TLSVersion? = nil, suites: [NIOTLSCipher] = []) async throws -> Outcome {
        try await connect(address, ca: ca, certificate: certificate, maximum: maximum, suites: suites).outcome
    }

    /// The serial number of the certificate the listener presents to a new connection.
    static func serial(_ address: String, ca: String) async throws -> [UInt8]? {
        try await connect(address, ca: ca, certificate: nil, maximum: nil, suites: []).serial
    }

    private static func connect(_ address: String, ca: String, certificate: TLSFiles?, maximum: TLSVersion?, suites: [NIOTLSCipher]) async throws -> (outcome: Outcome, serial: [UInt8]?) {
        let parts = address.split(separator: ":")
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        configuration.certificateVerification = .noHostnameVerification
        configuration.maximumTLSVersion = maximum
        configuration.applicationProtocols = ["h2"]
        if !suites.isEmpty { configuration.cipherSuiteValues = suites }
        if let certificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
        }
        let context = try NIOSSLContext(configuration: configuration)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let outcome = loop.makePromise(of: (Outcome, [UInt8]?).self)
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(outcome))
                }
            }
            .connect(host: String(parts[0]), port: Int(parts[1])!).get()
        defer { channel.close(promise: nil) }
        let (result, serial) = try await outcome.futureResult.get()
        return (result, serial)
    }

    /// Completes the promise once: the version when the handshake completes, `refused` when
    /// it fails or the connection closes first, or after 10 s.
    private final class HandshakeWatcher: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let promise: EventLoopPromise<(Outcome, [UInt8]?)>
        private var done = false

        init(_ promise: EventLoopPromise<(Outcome, [UInt8]?)>) { self.promise = promise }

        func handlerAdded(context: ChannelHandlerContext) {
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { self.finish(.failure(ChannelError.connectTimeout(.seconds(10)))) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted? = event as? TLSUserEvent {
                let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion()
                let serial = (try? context.pipeline.syncOperations.nioSSL_peerCertificate())?.flatMap { $0 }?.serialNumber
                finish(.success((version.flatMap { $0 }.map(Outcome.negotiated) ?? .refused, serial)))
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { finish(.success((.refused, nil))) }
        func channelInactive(context: ChannelHandlerContext) { finish(.success((.refused, nil))) }

        private func finish(_ outcome: Result<(Outcome, [UInt8]?), any Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(outcome)
        }
    }
}
