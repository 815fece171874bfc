import Foundation
import GRPCNIOTransportHTTP2
import X509

/// A node's or operator's TLS files: the cluster's CA, and a certificate and key it signed.
public struct TLSFiles: Sendable, Equatable {
    public var ca: String
    public var certificate: String
    public var key: String

    public init(ca: String, certificate: String, key: String) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }

    /// The identity the certificate names; fails when it names none, or the files are
    /// unreadable, so a node finds out at start rather than at its first handshake.
    public func identity() throws -> Identity {
        for path in [ca, certificate, key] where !FileManager.default.isReadableFile(atPath: path) {
            throw PKIError("cannot read \(path)")
        }
        let certificate = try Certificate(pemEncoded: try Issuer.read(self.certificate))
        guard let identity = Identity(certificate: certificate) else {
            throw PKIError("\(self.certificate) names no chorus:// identity; issue it with `chorus-tools certs`")
        }
        return identity
    }

    /// A node calling a peer, or an operator calling the Admin API: its own certificate
    /// offered, the server's checked against the CA. Host names are not checked: peers are
    /// named by address, and the server checks who is calling.
    public func mutualClientSecurity(reloading files: CertificateFiles? = nil) -> HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key, format: .pem)) {
            $0.trustRoots = .certificates([.file(path: ca, format: .pem)])
            $0.serverCertificateVerification = .noHostnameVerification
            $0.certificateReloader = files
        }
    }
}

/// How a client reaches the client API: plaintext (a cluster run `--insecure`) or TLS,
/// verifying the node's certificate against the cluster's CA, host name included.
public enum ClientSecurity: Sendable, Equatable {
    case plaintext
    case tls(ca: String)
    /// TLS with a certificate of our own: a web gateway calling the nodes' peer listeners.
    case mutualTLS(TLSFiles)

    /// Where to connect for `host`: an IP literal as an address, so that TLS checks the
    /// certificate's IP SANs rather than sending the literal as SNI, which TLS forbids.
    public static func target(host: String, port: Int) -> any ResolvableTarget {
        if Issuer.ipAddress(host)?.count == 4 { return .ipv4(address: host, port: port) }
        if Issuer.ipAddress(host) != nil { return .ipv6(address: host, port: port) }
        return .dns(host: host, port: port)
    }

    public var transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        switch self {
        case .plaintext:
            .plaintext
        case let .tls(ca):
            .tls {
                $0.trustRoots = .certificates([.file(path: ca, format: .pem)])
                $0.serverCertificateVerification = .fullVerification
            }
        case let .mutualTLS(files):
            files.mutualClientSecurity()
        }
    }
}
