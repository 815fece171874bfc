import API
import ArgumentParser
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import InlineGRPC
import NIOExecutor
import NIOPosix
import NIOSSL
import Node
import ToolSupport

/// `chorus-lab bare-server`: grpc-swift-2 answering `grpc.health.v1.Health/Check` with
/// SERVING and nothing else, so `bench/bare_call.sh` can tell what a call costs the library
/// from what it costs a node (whose Check asks the replica) and from grpc-go's server.
///
/// With `--node-settings` the server is set up as a node's client listener is: its transport
/// settings (request ceiling, streams, keepalive, PING shaping), `--client-threads` event
/// loops, and handlers run on the event loop that read the call.
struct BareServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bare-server",
        abstract: "Serve only grpc.health.v1.Health/Check on grpc-swift-2 (the bare-call benchmark's reference).")

    @Option(help: "Where to listen (host:port).")
    var listen = "127.0.0.1:7602"

    @Flag(help: "Set up the listener as a node's client listener is, instead of grpc-swift-2's defaults.")
    var nodeSettings = false

    @Flag(help: "Answer on swift-nio-http2 directly, without grpc-swift-2 (a measuring stick: every path gets the same answer).")
    var lean = false

    @Flag(help: "grpc-swift-2's server on the node's inline transport (InlineGRPC), set up as a node's client listener.")
    var inline = false

    @Option(help: "TLS: the server's certificate (PEM); plaintext without it.")
    var certificate: String?

    @Option(help: "TLS: the certificate's key (PEM).")
    var key: String?

    @Option(help: "Event loops with --node-settings or --lean (a node's --client-threads).")
    var clientThreads = NodeConfiguration.defaultClientThreads

    func run() async throws {
        guard let address = PeerAddress(listen) else { throw ValidationError("--listen must be host:port, not \(listen)") }
        // A node's TLS context (its versions, suites and ALPN names), for --node-settings and --lean.
        let context = try certificate.map { try TLSFiles(ca: "", certificate: $0, key: key ?? "").serverContext(reloading: nil, mutual: false) }
        if lean { return try await LeanBareServer.run(host: address.host, port: address.port, threads: clientThreads, tls: context) }
        let node = NodeConfiguration(id: 1, listen: address, members: [1: address], dataDirectory: "/nonexistent", clusterID: "bare")
        if inline { return try await serveInline(node, tls: context) }
        let config = nodeSettings ? node.clientListenerSettings(tls: context) : .defaults
        let group = nodeSettings ? MultiThreadedEventLoopGroup(numberOfThreads: clientThreads) : .singleton
        let executor = nodeSettings ? EventLoopExecutor(group) : nil
        // At grpc-swift-2's defaults, its own TLS; with a node's settings, the node's handler.
        let security: HTTP2ServerTransport.Posix.TransportSecurity = if let certificate, !nodeSettings {
            .tls(certificateChain: [.file(path: certificate, format: .pem)], privateKey: .file(path: key ?? "", format: .pem))
        } else {
            .plaintext
        }
        let server = GRPCServer(
            transport: HTTP2ServerTransport.Posix(address: .ipv4(host: address.host, port: address.port), transportSecurity: security,
                                                  config: config, eventLoopGroup: group),
            services: [AlwaysServing()])
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask {
                if let executor {
                    try await withTaskExecutorPreference(executor) { try await server.serve() }
                } else {
                    try await server.serve()
                }
            }
            if let bound = try await server.listeningAddress {
                // Unbuffered: the benchmark waits for this line in a file.
                FileHandle.standardOutput.write(Data("listening on \(bound)\n".utf8))
            }
        }
    }
}

extension BareServer {
    /// The node's client listener as it is: GRPCServer on `InlineServerTransport` with the
    /// node's settings, handlers on the loop that read the call.
    private func serveInline(_ node: NodeConfiguration, tls: NIOSSLContext?) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: clientThreads)
        let executor = EventLoopExecutor(group)
        let transport = InlineServerTransport(node.inlineServerConfig(for: .clients, tls: tls, eventLoopGroup: group, executor: executor))
        let server = GRPCServer(transport: transport, services: [AlwaysServing()])
        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask { try await withTaskExecutorPreference(executor) { try await server.serve() } }
            let bound = try await transport.listeningAddress
            FileHandle.standardOutput.write(Data("listening on \(bound)\n".utf8))
        }
    }
}

/// Health that is always SERVING, for the whole server and any service name.
private struct AlwaysServing: Grpc_Health_V1_Health.SimpleServiceProtocol {
    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        .with { $0.status = .serving }
    }

    func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        .with { $0.statuses[""] = .with { $0.status = .serving } }
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext) async throws {
        try await response.write(.with { $0.status = .serving })
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
