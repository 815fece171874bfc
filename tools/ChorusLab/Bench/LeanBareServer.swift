import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL

/// The bare call answered on swift-nio-http2 directly, for `bench/bare_call.sh`: no gRPC
/// library, no child channel or task per stream. Each stream's frames reach one handler on
/// the connection's event loop, which answers `grpc.health.v1.Health/Check` with three frames
/// once the request has ended, and flushes once per read burst.
///
/// A measuring stick, not a server: it answers every path the same way and checks nothing.
/// It tells what a call can cost in Swift on NIO, next to grpc-swift-2 and grpc-go.
enum LeanBareServer {
    static func run(host: String, port: Int, threads: Int, tls: NIOSSLContext?) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    let settings = [HTTP2Setting(parameter: .maxConcurrentStreams, value: 4096),
                                    HTTP2Setting(parameter: .maxHeaderListSize, value: 16 << 10)]
                    try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server, initialSettings: settings))
                    try channel.pipeline.syncOperations.addHandler(BareCallHandler())
                }
            }
            .bind(host: host, port: port).get()
        print("listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        try await channel.closeFuture.get()
    }
}

/// Answers each request stream once it has ended: HEADERS, one DATA (the gRPC frame of a
/// `HealthCheckResponse` with status SERVING), and trailers with grpc-status 0.
private final class BareCallHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private static let headers: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    private static let trailers: HPACKHeaders = ["grpc-status": "0"]
    /// Not compressed, 2 bytes: field 1 (status) = 1 (SERVING).
    private static let body: ByteBuffer = ByteBuffer(bytes: [0, 0, 0, 0, 2, 0x08, 0x01])
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let ended = switch frame.payload {
        case let .headers(headers): headers.endStream
        case let .data(data): data.endStream
        default: false
        }
        guard ended else { return }
        let stream = frame.streamID
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: Self.headers)))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(Self.body))))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: Self.trailers, endStream: true)))), promise: nil)
        answered = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if answered {
            answered = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}
