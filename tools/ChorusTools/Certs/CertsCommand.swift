import ArgumentParser
import ClusterPKI
import Foundation

/// `chorus-tools certs`: the cluster's CA and the certificates it signs, as PEM files in one
/// directory (`ca.pem`, `ca-key.pem`, `node-ID.pem`, `node-ID-key.pem`,
/// `operator-NAME.pem`, `operator-NAME-key.pem`, `web-NAME.pem`, `web-NAME-key.pem`). Keys are
/// written mode 0600.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Create the cluster's CA and sign node, operator and web gateway certificates.",
        subcommands: [Authority.self, NodeCertificate.self, OperatorCertificate.self, WebCertificate.self, Local.self]
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
