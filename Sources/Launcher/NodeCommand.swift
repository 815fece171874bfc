import ClusterPKI

/// The command line of one `chorus-node run`: what every harness that starts nodes (the
/// quick-start `local-cluster`, the benchmark and fault-injection clusters, the tests)
/// builds, so that a new flag or a changed default is written once.
public struct NodeCommand: Sendable {
    /// One `--peer`: a member's id, where peers reach it, where clients reach it.
    public struct Member: Sendable {
        public var id: UInt64
        public var peer: String
        public var client: String

        public init(id: UInt64, peer: String, client: String) {
            self.id = id
            self.peer = peer
            self.client = client
        }
    }

    public var id: UInt64
    public var cluster: String
    /// The client listener, host:port.
    public var listen: String
    /// The peer listener (mutual TLS); nil runs plaintext on `listen` alone (`--insecure`).
    public var peerListen: String?
    public var dataDirectory: String
    /// This node's certificate, key and the cluster's CA; nil with `--insecure`.
    public var tls: TLSFiles?
    public var members: [Member]
    /// Start empty and wait to be added (`--join`).
    public var join = false
    public var metricsListen: String?
    /// Anything else, appended as given.
    public var extra: [String] = []

    public init(id: UInt64, cluster: String, listen: String, peerListen: String?, dataDirectory: String, tls: TLSFiles?, members: [Member]) {
        self.id = id
        self.cluster = cluster
        self.listen = listen
        self.peerListen = peerListen
        self.dataDirectory = dataDirectory
        self.tls = tls
        self.members = members
    }

    public var arguments: [String] {
        var arguments = ["run", "--id", "\(id)", "--listen", listen, "--data-dir", dataDirectory, "--cluster-id", cluster]
        if let tls, let peerListen {
            arguments += ["--peer-listen", peerListen, "--ca", tls.ca, "--cert", tls.certificate, "--key", tls.key]
            for member in members { arguments += ["--peer", "\(member.id)=\(member.peer),\(member.client)"] }
        } else {
            arguments.append("--insecure")
            for member in members { arguments += ["--peer", "\(member.id)=\(member.client)"] }
        }
        if join { arguments.append("--join") }
        if let metricsListen { arguments += ["--metrics-listen", metricsListen] }
        return arguments + extra
    }
}
