import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// An HTTP/2 connection the test drives frame by frame, to send what no gRPC client would
/// (a prefix announcing more than it sends, a body never finished) and see every frame back.
final class RawHTTP2Client: Sendable {
    let channel: any Channel
    private let recorder: FrameRecorder

    static func connect(port: Int) async throws -> RawHTTP2Client {
        let recorder = FrameRecorder()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .client))
                    try channel.pipeline.syncOperations.addHandler(FrameRecorderHandler(recorder: recorder))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTP2Client(channel: channel, recorder: recorder)
    }

    private init(channel: any Channel, recorder: FrameRecorder) {
        self.channel = channel
        self.recorder = recorder
    }

    static func requestHeaders(_ path: String) -> HPACKHeaders {
        [":method": "POST", ":scheme": "http", ":path": path, ":authority": "localhost", "content-type": "application/grpc", "te": "trailers"]
    }

    /// A gRPC message prefix announcing `length` bytes, then `body`.
    static func message(announcing length: Int, body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(length))
        buffer.writeBytes(body)
        return buffer
    }

    func send(_ frames: HTTP2Frame...) async throws {
        for frame in frames { channel.write(frame, promise: nil) }
        channel.flush()
    }

    /// Sends a PING and returns every frame received before its answer: the server has read
    /// all that was sent before the PING, and written what it answered to it.
    func settle() async throws -> [HTTP2Frame] {
        let data = HTTP2PingData(withInteger: UInt64.random(in: 1...UInt64.max))
        try await send(HTTP2Frame(streamID: .rootStream, payload: .ping(data, ack: false)))
        return try await frames(until: { if case .ping(data, ack: true) = $0.payload { true } else { false } })
    }

    /// Frames received, up to and including the first that `stop` accepts.
    func frames(until stop: @escaping @Sendable (HTTP2Frame) -> Bool) async throws -> [HTTP2Frame] {
        var collected: [HTTP2Frame] = []
        while let frame = await recorder.next() {
            collected.append(frame)
            if stop(frame) { return collected }
        }
        return collected
    }

    func close() async {
        try? await channel.close()
    }
}

/// The frames received, in order; nil once the connection closed and all were taken.
private final class FrameRecorder: Sendable {
    private let state = Mutex<(frames: [HTTP2Frame], closed: Bool, waiter: CheckedContinuation<HTTP2Frame?, Never>?)>(([], false, nil))

    func record(_ frame: HTTP2Frame?) {
        let waiter = state.withLock { state -> CheckedContinuation<HTTP2Frame?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if let frame { state.frames.append(frame) } else { state.closed = true }
            return nil
        }
        waiter?.resume(returning: frame)
    }

    func next() async -> HTTP2Frame? {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> HTTP2Frame?? in
                if !state.frames.isEmpty { return .some(state.frames.removeFirst()) }
                if state.closed { return .some(nil) }
                state.waiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }
}

private final class FrameRecorderHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    let recorder: FrameRecorder

    init(recorder: FrameRecorder) {
        self.recorder = recorder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        recorder.record(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        recorder.record(nil)
    }

    /// A stream error (a frame written for a stream the server already reset) is part of what
    /// these tests provoke: the connection stays.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError || error is NIOHTTP2Errors.NoSuchStream || error is NIOHTTP2Errors.StreamClosed { return }
        context.close(promise: nil)
    }
}
