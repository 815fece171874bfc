import Foundation

/// The layout `chorus-tools certs` writes and a local cluster uses: `ca.pem`, `ca-key.pem`,
/// `node-ID.pem`, `node-ID-key.pem`, `operator-NAME.pem`, `operator-NAME-key.pem`.
public struct CertificateDirectory: Sendable {
    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    public var ca: String { "\(path)/ca.pem" }
    public var caKey: String { "\(path)/ca-key.pem" }

    public func node(_ id: UInt64) -> TLSFiles { files("node-\(id)") }
    public func `operator`(_ name: String) -> TLSFiles { files("operator-\(name)") }
    public func web(_ name: String) -> TLSFiles { files("web-\(name)") }

    func files(_ name: String) -> TLSFiles {
        TLSFiles(ca: ca, certificate: "\(path)/\(name).pem", key: "\(path)/\(name)-key.pem")
    }

    public func issuer() throws -> Issuer {
        try Issuer(certificatePath: ca, keyPath: caKey)
    }

    /// Creates what is missing of: a CA for `cluster`, certificates for nodes `1...nodes`
    /// reachable at `hosts`, operator `admin`, and web gateway `local` on `hosts`. What exists is kept, so running it again
    /// changes nothing and a restarted local cluster keeps its certificates.
    public func ensureLocal(cluster: String, nodes: Int, hosts: [String]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: caKey) {
            try Issuer.newAuthority(cluster: cluster).write(certificatePath: ca, keyPath: caKey)
        }
        let issuer = try issuer()
        for id in 1...UInt64(max(1, nodes)) where !FileManager.default.fileExists(atPath: node(id).key) {
            try issue(issuer, .node(cluster: cluster, id: id), hosts: hosts, days: 825, to: node(id))
        }
        if !FileManager.default.fileExists(atPath: self.operator("admin").key) {
            try issue(issuer, .operator(cluster: cluster, name: "admin"), hosts: [], days: 825, to: self.operator("admin"))
        }
        if !FileManager.default.fileExists(atPath: web("local").key) {
            // Browsers accept at most 398 days for a server certificate.
            try issue(issuer, .web(cluster: cluster, name: "local"), hosts: hosts, days: 397, to: web("local"))
        }
    }

    /// Signs a certificate for `identity` and writes it and its key where `files` say.
    public func issue(_ issuer: Issuer, _ identity: Identity, hosts: [String], days: Int, to files: TLSFiles) throws {
        let (certificate, key) = try issuer.issue(identity, hosts: hosts, days: days)
        try Issuer.write(certificate: certificate, key: key, certificatePath: files.certificate, keyPath: files.key)
    }
}
