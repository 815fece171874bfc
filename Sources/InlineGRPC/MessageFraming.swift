import NIOCore

/// gRPC's length-prefixed messages: one byte (compressed or not), four bytes of length, the
/// message.
enum MessageFraming {
    static let prefixLength = 5

    /// `bytes` as one gRPC message frame; the prefix goes into the room `InlineBytes` keeps in
    /// front of a serialized response, or into a new buffer for bytes without that room.
    static func frame(_ bytes: InlineBytes) -> ByteBuffer {
        var buffer = bytes.buffer
        let length = buffer.readableBytes
        guard buffer.readerIndex >= prefixLength else {
            var framed = ByteBufferAllocator().buffer(capacity: prefixLength + length)
            framed.writeInteger(UInt8(0))
            framed.writeInteger(UInt32(length))
            framed.writeImmutableBuffer(buffer)
            return framed
        }
        buffer.moveReaderIndex(to: buffer.readerIndex - prefixLength)
        buffer.setInteger(UInt8(0), at: buffer.readerIndex)
        buffer.setInteger(UInt32(length), at: buffer.readerIndex + 1)
        return buffer
    }
}

/// The largest request message a method takes, and the size past which the transport does not
/// even answer: it resets the stream.
public struct RequestLimit: Sendable, Hashable {
    public var maxMessageBytes: Int
    /// A message announcing more than this is reset at once (the client sees CANCELLED);
    /// between `maxMessageBytes` and this it is answered with RESOURCE_EXHAUSTED. Either way
    /// its body is never buffered.
    public var resetAbove: Int

    public init(maxMessageBytes: Int, resetAbove: Int) {
        self.maxMessageBytes = maxMessageBytes
        self.resetAbove = max(resetAbove, maxMessageBytes)
    }
}

/// Cuts one stream's DATA into gRPC messages. A message that fits in the frame it starts in is
/// a slice of that frame; one that spans frames is gathered, up to the limit only: the size in
/// its prefix is checked before any of its body is kept.
struct MessageDeframer {
    let limit: RequestLimit
    private var pending: ByteBuffer?

    init(limit: RequestLimit) {
        self.limit = limit
    }

    enum Outcome {
        case message(ByteBuffer)
        /// The prefix announces more than the limit.
        case oversized(Int)
        /// The prefix announces more than the reset bound.
        case reset(Int)
        /// The compressed flag is set, but no compression was agreed.
        case compressed
    }

    /// Whether part of a message is still waiting for more DATA.
    var hasPartialMessage: Bool { (pending?.readableBytes ?? 0) > 0 }

    /// Appends `data` and hands each complete message (or the first violation) to `body`.
    mutating func receive(_ data: ByteBuffer, _ body: (Outcome) -> Void) {
        var buffer: ByteBuffer
        if var pending = self.pending, pending.readableBytes > 0 {
            self.pending = nil
            pending.writeImmutableBuffer(data)
            buffer = pending
        } else {
            self.pending = nil
            buffer = data
        }
        while buffer.readableBytes >= MessageFraming.prefixLength {
            let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
            let length = Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)!)
            if flag != 0 { return body(.compressed) }
            if length > limit.resetAbove { return body(.reset(length)) }
            if length > limit.maxMessageBytes { return body(.oversized(length)) }
            guard buffer.readableBytes >= MessageFraming.prefixLength + length else { break }
            buffer.moveReaderIndex(forwardBy: MessageFraming.prefixLength)
            body(.message(buffer.readSlice(length: length)!))
        }
        if buffer.readableBytes > 0 {
            // Kept apart from the frame it came in, so that frame's memory can go.
            // Room for the whole message once its prefix is in (few allocations, not one per
            // frame), but never more than 64 KiB ahead of the bytes that came: a prefix alone
            // does not make the node reserve what it announces.
            let whole = buffer.readableBytes >= MessageFraming.prefixLength
                ? MessageFraming.prefixLength + Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)!) : buffer.readableBytes
            var rest = ByteBufferAllocator().buffer(capacity: min(whole, buffer.readableBytes + (64 << 10)))
            rest.writeImmutableBuffer(buffer)
            pending = rest
        }
    }
}
