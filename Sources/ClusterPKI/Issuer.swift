import Crypto
import Foundation
import SwiftASN1
import X509

/// Makes the cluster's certificates: a CA, and node and operator certificates it signs.
/// Keys are P-256; files are PEM, keys written mode 0600.
public struct Issuer: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// A new CA for `cluster`, valid for ten years.
    public static func newAuthority(cluster: String, now: Date = Date()) throws -> Issuer {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Chorus")
            CommonName("Chorus CA for cluster \(cluster)")
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key)
        )
        return Issuer(certificate: certificate, key: key)
    }

    /// The CA in `certificatePath` and `keyPath`.
    public init(certificatePath: String, keyPath: String) throws {
        certificate = try Certificate(pemEncoded: try Self.read(certificatePath))
        key = try P256.Signing.PrivateKey(pemRepresentation: try Self.read(keyPath))
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw PKIError("the key in \(keyPath) does not belong to the certificate in \(certificatePath)")
        }
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A certificate for `identity`, reachable at `hosts` (DNS names or IP addresses), valid
    /// for `days`. Good for both ends of TLS: nodes are servers to their peers and clients,
    /// and clients of their peers.
    public func issue(_ identity: Identity, hosts: [String] = [], days: Int = 825, now: Date = Date()) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        for host in hosts {
            if let address = Self.ipAddress(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: address[...])))
            } else {
                names.append(.dnsName(host))
            }
        }
        let subject = try DistinguishedName {
            OrganizationName("Chorus")
            CommonName(identity.uri)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600),
            notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: self.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: .init(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(self.key)
        )
        return (certificate, key)
    }

    /// Writes the CA's certificate and key.
    public func write(certificatePath: String, keyPath: String) throws {
        try Self.write(certificate: certificate, key: key, certificatePath: certificatePath, keyPath: keyPath)
    }

    /// Writes a certificate (mode 0644) and its key (mode 0600, created so: never readable by
    /// others, not even for a moment).
    public static func write(certificate: Certificate, key: P256.Signing.PrivateKey, certificatePath: String, keyPath: String) throws {
        try writeFile(keyPath, key.pemRepresentation + "\n", mode: 0o600)
        try writeFile(certificatePath, try certificate.serializeAsPEM().pemString + "\n", mode: 0o644)
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw PKIError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            throw PKIError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    public static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw PKIError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// The text of an IPv4 (4 bytes) or IPv6 (16 bytes) address, as a certificate's IP name
    /// holds it.
    public static func addressText(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16, bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }) != nil else {
            return bytes.map(String.init).joined(separator: ".")
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The bytes of an IPv4 or IPv6 literal, or nil for a host name.
    static func ipAddress(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

public struct PKIError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
