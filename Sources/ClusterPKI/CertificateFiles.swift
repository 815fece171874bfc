import Foundation
import Crypto
import NIOCertificateReloading
import NIOSSL
import Synchronization
import X509

/// A certificate and key read from files, read again on request (a node does on SIGHUP), so
/// a renewed certificate takes effect without a restart. Every TLS handshake after a reload
/// uses the new pair; connections already open keep theirs.
public final class CertificateFiles: CertificateReloader {
    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<(override: NIOSSLContextConfigurationOverride, serial: String, notValidAfter: Date)>

    public init(certificate: String, key: String) throws {
        certificatePath = certificate
        keyPath = key
        current = Mutex(try Self.load(certificate: certificate, key: key))
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        current.withLock { $0.override }
    }

    /// The serial number of the certificate in use, in hex.
    public var serial: String { current.withLock { $0.serial } }

    /// When the certificate in use expires.
    public var notValidAfter: Date { current.withLock { $0.notValidAfter } }

    /// Reads both files again; on failure the pair in use stays. Returns the new serial.
    @discardableResult
    public func reload() throws -> String {
        let loaded = try Self.load(certificate: certificatePath, key: keyPath)
        current.withLock { $0 = loaded }
        return loaded.serial
    }

    static func load(certificate: String, key: String) throws -> (override: NIOSSLContextConfigurationOverride, serial: String, notValidAfter: Date) {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate)
        guard let leaf = chain.first else { throw PKIError("\(certificate) holds no certificate") }
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        // A mismatched pair would fail every later handshake: refuse it while the old one
        // still serves. (Checked for P-256 keys, the kind `chorus-tools certs` makes.)
        if let p256 = try? P256.Signing.PrivateKey(pemRepresentation: try Issuer.read(key)),
           let parsed = try? Certificate(pemEncoded: try Issuer.read(certificate)),
           parsed.publicKey != Certificate.PublicKey(p256.publicKey)
        {
            throw PKIError("the key in \(key) does not belong to the certificate in \(certificate)")
        }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(privateKey)
        let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        return (override, leaf.serialNumber.map { String($0, radix: 16) }.joined(), expiry)
    }
}
