import API
import GRPCCore
import GRPCNIOTransportHTTP2
import InlineGRPC
import NIOCore
import NIOExecutor
import NIOSSL

/// What a listener serves: its HTTP/2 settings follow from it.
public enum Listener: Sendable {
    /// The client API (`--listen` with TLS).
    case clients
    /// The peer and admin APIs (`--peer-listen`): authenticated nodes and operators.
    case peers
    /// Both on one listener (`--insecure`, for development).
    case both
}

extension NodeConfiguration {
    /// A peer request carries a batch of Raft messages that its sender keeps under
    /// `PeerLink.batchBytes`; this leaves room for one more message of `maxMessageBytes`.
    static let peerRequestLimit = 16 << 20

    /// The transport settings of `listener`.
    ///
    /// The request-size ceiling of the transport resets the stream of a larger request without
    /// a status, so on the client listener it sits at 4× the limit and `RequestSizeLimit`
    /// answers requests between the two with RESOURCE_EXHAUSTED naming the limit.
    ///
    /// Pings: grpc-go sends a flow-control (BDP) ping with each round of data it receives,
    /// and gRFC A8's policing of pings, meant for keepalive, closes such a connection every
    /// few hundred milliseconds.
    ///
    /// TLS: with `tls`, the transport itself runs plaintext and each accepted connection gets
    /// a handler of that context first in its pipeline (see `ServerTLS` for why the transport's
    /// own TLS is not used). The transport still finds the handler to read the caller's
    /// certificate (`ServerContext.peerIdentity`). Every ping is accepted, with or without calls open; the
    /// HTTP/2 layer's own limit on them (200 in 30 s) is kept by holding the excess back
    /// (`PingShaper`), and a flood past that still closes the connection.
    func serverConfig(for listener: Listener, tls: NIOSSLContext?) -> HTTP2ServerTransport.Posix.Config {
        .defaults { config in
            switch listener {
            case .clients: config.rpc.maxRequestPayloadSize = maxRequestBytes * 4
            case .peers, .both: config.rpc.maxRequestPayloadSize = Self.peerRequestLimit
            }
            config.http2.maxConcurrentStreams = maxConcurrentStreams
            // grpc-go's and grpcio's flow-control PINGs, kept under the HTTP/2 layer's limit.
            config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls), position: .first) }
                    try PingShaper.install(in: pipeline)
                }
            }
            config.connection.keepalive = .init(
                time: keepaliveInterval,
                timeout: keepaliveTimeout,
                clientBehavior: .init(minPingIntervalWithoutCalls: .zero, allowWithoutCalls: true)
            )
        }
    }
}

extension NodeConfiguration {
    /// The client listener on the inline transport: the same limits, pings and keepalive as
    /// `serverConfig(for:tls:)` gives grpc-swift-2's transport, and the request limit checked
    /// from each message's length prefix: the chat API's requests to `--max-request-bytes`
    /// (RESOURCE_EXHAUSTED naming it up to 4× that, a reset beyond), peers' batches to
    /// `peerRequestLimit`.
    public func inlineServerConfig(for listener: Listener, tls: NIOSSLContext?, eventLoopGroup: any EventLoopGroup,
                                   executor: EventLoopExecutor?) -> InlineServerTransport.Configuration {
        var config = InlineServerTransport.Configuration(host: listen.host, port: listen.port, eventLoopGroup: eventLoopGroup)
        config.executor = executor
        config.maxConcurrentStreams = maxConcurrentStreams
        config.keepaliveInterval = TimeAmount(keepaliveInterval)
        config.keepaliveTimeout = TimeAmount(keepaliveTimeout)
        let client = RequestLimit(maxMessageBytes: maxRequestBytes, resetAbove: maxRequestBytes * 4)
        let peer = RequestLimit(maxMessageBytes: Self.peerRequestLimit, resetAbove: Self.peerRequestLimit)
        let chat = Chorus_V1_Chat.descriptor
        config.requestLimit = { method in
            switch listener {
            case .clients: client
            case .peers: peer
            case .both: method.service == chat || method.service.fullyQualifiedService == "grpc.health.v1.Health" ? client : peer
            }
        }
        config.configureConnection = { channel in
            let pipeline = channel.pipeline.syncOperations
            if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls), position: .first) }
            try PingShaper.install(in: pipeline)
        }
        return config
    }
}

extension NodeConfiguration {
    /// The client listener's transport settings, for a benchmark's server that measures them
    /// apart from the node (`chorus-lab bare-server --node-settings`).
    public func clientListenerSettings(tls: NIOSSLContext?) -> HTTP2ServerTransport.Posix.Config {
        serverConfig(for: .clients, tls: tls)
    }
}
