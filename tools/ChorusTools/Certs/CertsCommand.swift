import ArgumentParser
import ClusterPKI
import Foundation
import ToolSupport
import X509

/// `chorus-tools certs`: the cluster's CA and the certificates it signs, as PEM files in one
/// directory (`ca.pem`, `ca-key.pem`, `node-ID.pem`, `node-ID-key.pem`,
/// `operator-NAME.pem`, `operator-NAME-key.pem`, `web-NAME.pem`, `web-NAME-key.pem`). Keys are
/// written mode 0600.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create the cluster's CA and sign node, operator and web gateway certificates.",
        subcommands: [Authority.self, NodeCertificate.self, OperatorCertificate.self, WebCertificate.self, Local.self, Renew.self]
    )

    struct Location: ParsableArguments {
        @Option(help: "The directory holding the CA and the certificates.") var dir: String = "certs"
        @Option(help: "The cluster's name, as every node's --cluster-id.") var cluster: String = "chorus"

        var directory: CertificateDirectory { CertificateDirectory(dir) }

        func prepare() throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
    }

    struct Authority: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ca", abstract: "Create a new CA (ca.pem, ca-key.pem); refuses to replace one.")
        @OptionGroup var location: Location

        func run() throws {
            try location.prepare()
            let directory = location.directory
            guard !FileManager.default.fileExists(atPath: directory.caKey) else {
                throw ValidationError("\(directory.caKey) exists; a new CA would orphan every certificate it signed")
            }
            try Issuer.newAuthority(cluster: location.cluster).write(certificatePath: directory.ca, keyPath: directory.caKey)
            print("wrote \(directory.ca) and \(directory.caKey) (keep the key offline)")
        }
    }

    struct NodeCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "node", abstract: "Sign a certificate for node ID (node-ID.pem, node-ID-key.pem).")
        @OptionGroup var location: Location
        @Option(help: "The node's id.") var id: UInt64
        @Option(name: .customLong("host"), help: "A DNS name or IP address the node is reached by; repeat for each.") var hosts: [String] = []
        @Option(help: "Days the certificate is valid.") var days: Int = 825

        func run() throws {
            guard id > 0 else { throw ValidationError("node ids are positive") }
            let directory = location.directory
            try directory.issue(try directory.issuer(), .node(cluster: location.cluster, id: id), hosts: hosts, days: days, to: directory.node(id))
            print("wrote \(directory.node(id).certificate) and \(directory.node(id).key)")
        }
    }

    /// A node's certificate again, for the same node and the same names, valid from now: then
    /// SIGHUP to the node, which takes it without a restart.
    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Renew node ID's certificate (the same identity and names, a new key, valid from now); then send the node SIGHUP."
        )
        @OptionGroup var location: Location
        @Option(help: "The node's id.") var node: UInt64
        @Option(help: "Days the new certificate is valid.") var days: Int = 825

        func run() throws {
            let directory = location.directory
            let files = directory.node(node)
            let old = try Certificate(pemEncoded: try Issuer.read(files.certificate))
            guard let identity = Identity(certificate: old) else { throw ToolError("\(files.certificate) names no chorus:// identity") }
            guard identity == .node(cluster: location.cluster, id: node) else {
                throw ToolError("\(files.certificate) is the certificate of \(identity), not of node \(node) of cluster '\(location.cluster)' (give --cluster)")
            }
            var hosts: [String] = []
            for name in Array((try old.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames()) {
                switch name {
                case let .dnsName(host): hosts.append(host)
                case let .ipAddress(bytes): hosts.append(Issuer.addressText(Array(bytes.bytes)))
                default: break
                }
            }
            try directory.issue(try directory.issuer(), identity, hosts: hosts, days: days, to: files)
            let renewed = try Certificate(pemEncoded: try Issuer.read(files.certificate))
            print("renewed \(files.certificate) for \(identity.uri) (\(hosts.joined(separator: ", "))): valid until \(ISO8601DateFormatter().string(from: renewed.notValidAfter)), serial \(renewed.serialNumber); send node \(node) SIGHUP to use it")
        }
    }

    struct OperatorCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "operator", abstract: "Sign an operator certificate for the Admin API (operator-NAME.pem, operator-NAME-key.pem).")
        @OptionGroup var location: Location
        @Option(help: "Who holds it.") var name: String = "admin"
        @Option(help: "Days the certificate is valid.") var days: Int = 90

        func run() throws {
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("an operator name is not empty and has no '/'") }
            let directory = location.directory
            try directory.issue(try directory.issuer(), .operator(cluster: location.cluster, name: name), hosts: [], days: days, to: directory.operator(name))
            print("wrote \(directory.operator(name).certificate) and \(directory.operator(name).key)")
        }
    }

    struct WebCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "web", abstract: "Sign a server certificate for a chorus-web gateway (web-NAME.pem, web-NAME-key.pem).")
        @OptionGroup var location: Location
        @Option(help: "The gateway's name.") var name: String = "local"
        @Option(name: .customLong("host"), help: "A DNS name or IP address browsers reach the gateway by; repeat for each.") var hosts: [String] = []
        @Option(help: "Days the certificate is valid (browsers accept at most 398).") var days: Int = 397

        func run() throws {
            guard !name.isEmpty, !name.contains("/") else { throw ValidationError("a gateway name is not empty and has no '/'") }
            guard !hosts.isEmpty else { throw ValidationError("give at least one --host: browsers check the name they connect to") }
            let directory = location.directory
            try directory.issue(try directory.issuer(), .web(cluster: location.cluster, name: name), hosts: hosts, days: days, to: directory.web(name))
            print("wrote \(directory.web(name).certificate) and \(directory.web(name).key)")
        }
    }

    /// Everything a local cluster needs, created once: a CA, node 1...N on `--host`, and
    /// operator `admin`. Files that exist are kept, so a second run changes nothing.
    struct Local: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "local", abstract: "Create (once) a CA, certificates for nodes 1...N, operator 'admin' and web gateway 'local'.")
        @OptionGroup var location: Location
        @Option(help: "How many nodes.") var nodes: Int = 5
        @Option(name: .customLong("host"), help: "A DNS name or IP address every node is reached by; repeat for each.") var hosts: [String] = ["127.0.0.1", "localhost"]

        func run() throws {
            try location.directory.ensureLocal(cluster: location.cluster, nodes: nodes, hosts: hosts)
            print("certificates for cluster '\(location.cluster)' (nodes 1...\(nodes), operator admin, web gateway local) in \(location.dir)")
        }
    }
}
