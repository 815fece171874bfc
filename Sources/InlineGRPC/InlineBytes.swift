import GRPCCore
import NIOCore

/// A message's bytes as the inline transport holds them, in a `ByteBuffer`.
///
/// A request is a slice of the DATA frame it arrived in, never copied. A response is
/// serialized after five spare bytes, so the transport writes the gRPC message prefix in front
/// of it in place instead of copying the message into a new frame.
public struct InlineBytes: GRPCContiguousBytes, Sendable, Hashable {
    var buffer: ByteBuffer

    init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    public init(repeating byte: UInt8, count: Int) {
        buffer = Self.roomForPrefix(capacity: count)
        buffer.writeRepeatingByte(byte, count: count)
    }

    public init<Bytes: Sequence>(_ sequence: Bytes) where Bytes.Element == UInt8 {
        buffer = Self.roomForPrefix(capacity: sequence.underestimatedCount)
        buffer.writeBytes(sequence)
    }

    public var count: Int { buffer.readableBytes }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }

    private static func roomForPrefix(capacity: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: MessageFraming.prefixLength + capacity)
        buffer.moveWriterIndex(forwardBy: MessageFraming.prefixLength)
        buffer.moveReaderIndex(forwardBy: MessageFraming.prefixLength)
        return buffer
    }
}
