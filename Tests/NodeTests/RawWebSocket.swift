import NIOCore
import NIOPosix

/// A WebSocket opened by hand over TCP, to see the bytes a browser sees.
///
/// A library client reads the handshake's answer and the frames after it in separate steps;
/// when a server answers at once (a refusal sent with the upgrade), the first frames can come in
/// the same TCP segment as the `101`, and a client that loses them shows a frame the server never
/// failed to send. Parsing the stream as one piece, as a browser does, cannot lose them.
enum RawWebSocket {
    struct Answer {
        /// The status line of the handshake's answer, e.g. `HTTP/1.1 101 Switching Protocols`.
        var status: String
        /// The text frames, in order.
        var texts: [String] = []
        /// The close frame's code, if one came.
        var closeCode: UInt16?
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Opens `path` on `127.0.0.1:port` with `headers` (and a same-site `Origin` unless they
    /// name one), and hands `onText` each text frame until it returns true, the server sends a
    /// close frame or ends the connection, or `within` passes; then closes. The answer's status
    /// is whatever the server said: a refused upgrade is an answer, not an error.
    static func open(port: Int, path: String, headers: [(String, String)], within: Duration?, onText: @escaping @Sendable (String) -> Bool) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let exchange: @Sendable () async throws -> Answer = {
            try await channel.executeThenClose { inbound, outbound in
                var request = "GET \(path) HTTP/1.1\r\nHost: localhost:\(port)\r\n"
                if !headers.contains(where: { $0.0.lowercased() == "origin" }) { request += "Origin: http://localhost:\(port)\r\n" }
                for (name, value) in headers { request += "\(name): \(value)\r\n" }
                request += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                try await outbound.write(ByteBuffer(string: request))
                var received = ByteBuffer()
                var answer = Answer(status: "")
                for try await var chunk in inbound {
                    received.writeBuffer(&chunk)
                    if answer.status.isEmpty {
                        guard let end = received.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                        let head = received.readString(length: end.upperBound - received.readerIndex) ?? ""
                        answer.status = String(head.prefix { $0 != "\r" })
                        guard answer.status.contains(" 101 ") else { return answer }
                    }
                    while let frame = try nextFrame(&received) {
                        switch frame.opcode {
                        case 0x1:
                            let text = String(decoding: frame.payload, as: UTF8.self)
                            answer.texts.append(text)
                            if onText(text) { return answer }
                        case 0x8:
                            answer.closeCode = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : nil
                            return answer
                        case 0x9:
                            // Answered as a browser answers: the gateway closes a channel
                            // whose pings go unanswered.
                            try await outbound.write(pong(frame.payload))
                        default:
                            break
                        }
                    }
                }
                guard !answer.status.isEmpty else { throw Failure(description: "the connection to \(path) closed before the handshake's answer") }
                return answer
            }
        }
        guard let within else { return try await exchange() }
        return try await GatewayHTTP.bounded(within, "the upgrade to \(path)", close: channel.channel, exchange)
    }

    /// A pong carrying `payload` (at most 125 bytes, as a ping's is), masked as every client
    /// frame must be.
    private static func pong(_ payload: [UInt8]) -> ByteBuffer {
        let mask: [UInt8] = [0x5A, 0xC3, 0x1E, 0x77]
        var frame = ByteBuffer(bytes: [0x8A, 0x80 | UInt8(min(payload.count, 125))] + mask)
        frame.writeBytes(payload.prefix(125).enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return frame
    }

    /// One whole server frame from the front of `buffer`, or nil until one has fully arrived.
    /// Server frames are never masked; fragmented messages are not used by the gateway.
    private static func nextFrame(_ buffer: inout ByteBuffer) throws -> (opcode: UInt8, payload: [UInt8])? {
        let bytes = Array(buffer.readableBytesView)
        guard bytes.count >= 2 else { return nil }
        guard bytes[1] & 0x80 == 0 else { throw Failure(description: "a server frame was masked") }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            guard length <= 1 << 24 else { throw Failure(description: "a frame of \(length) bytes") }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        buffer.moveReaderIndex(forwardBy: offset + length)
        return (bytes[0] & 0x0F, Array(bytes[offset..<offset + length]))
    }
}
