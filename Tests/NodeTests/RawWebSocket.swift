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

    /// Opens `path` on `127.0.0.1:port` with `cookie`, and reads until the server sends a close
    /// frame or ends the connection, or `within` passes; then closes.
    static func open(port: Int, path: String, cookie: String, within: Duration = .seconds(15)) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: Answer?.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    let request = "GET \(path) HTTP/1.1\r\nHost: localhost:\(port)\r\nOrigin: http://localhost:\(port)\r\n"
                        + "Cookie: \(cookie)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    try await outbound.write(ByteBuffer(string: request))
                    var received = ByteBuffer()
                    var answer: Answer?
                    for try await var chunk in inbound {
                        received.writeBuffer(&chunk)
                        if answer == nil {
                            guard let end = received.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                            let head = received.readString(length: end.upperBound - received.readerIndex) ?? ""
                            answer = Answer(status: String(head.prefix { $0 != "\r" }))
                            guard answer?.status.contains(" 101 ") == true else { return answer }
                        }
                        while let frame = try nextFrame(&received) {
                            switch frame.opcode {
                            case 0x1:
                                answer?.texts.append(String(decoding: frame.payload, as: UTF8.self))
                            case 0x8:
                                answer?.closeCode = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : nil
                                return answer
                            default:
                                break
                            }
                        }
                    }
                    return answer
                }
            }
            group.addTask {
                try await Task.sleep(for: within)
                return nil
            }
            defer { group.cancelAll() }
            guard let answer = try await group.next() ?? nil else {
                channel.channel.close(promise: nil)
                throw Failure(description: "no answer within \(within)")
            }
            return answer
        }
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
