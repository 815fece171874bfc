import NIOCertificateReloading
import NIOSSL

/// The TLS every listener of a cluster speaks: a node's client and peer listeners and the web
/// gateway's.
///
/// TLS 1.3 is negotiated with every client that has it (BoringSSL picks the highest version
/// both sides know, and its 1.3 suites are all AEAD). TLS 1.2 stays for older clients, but
/// only with ephemeral (forward-secret) key exchange and an AEAD cipher: no CBC suites with
/// their SHA-1 MACs and padding oracles, no static RSA key exchange. NIOSSL's defaults keep
/// both for compatibility, and grpc-swift-nio-transport builds its context from those
/// defaults with no way to narrow them, so the nodes build their own context and put its
/// handler in front of the gRPC pipeline (`TLSListener` in the node).
public enum ServerTLS {
    /// The TLS 1.2 suites offered: ECDHE with AES-GCM or ChaCha20-Poly1305, for ECDSA
    /// certificates (the kind `chorus-tools certs` makes) and RSA ones.
    public static let tls12Suites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// Narrows `configuration` to the versions and suites above.
    public static func restrict(_ configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = nil
        configuration.cipherSuiteValues = tls12Suites
    }
}

extension TLSFiles {
    /// The context of a node's listener: its certificate and key (read again on each
    /// handshake from `files` when given, so SIGHUP renews them), gRPC's ALPN names, and with
    /// `mutual` a client certificate the cluster's CA signed (host names are not checked: the
    /// service checks the identity the certificate names).
    public func serverContext(reloading files: CertificateFiles?, mutual: Bool) throws -> NIOSSLContext {
        var configuration: TLSConfiguration
        if let files {
            configuration = try .makeServerConfiguration(certificateReloader: files)
        } else {
            configuration = .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
        }
        ServerTLS.restrict(&configuration)
        configuration.applicationProtocols = ["grpc-exp", "h2"]
        if mutual {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
