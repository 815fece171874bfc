/// Fixed-width big-endian integers: LMDB orders keys bytewise, so big-endian integer keys sort
/// numerically and composite keys (user id, message id) range-scan by prefix.
extension UInt64 {
    @inlinable
    public var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }

    /// Reads 8 big-endian bytes at `offset`; nil when there are not enough bytes.
    @inlinable
    public init?(bigEndianBytes bytes: some Collection<UInt8>, at offset: Int = 0) {
        guard bytes.count >= offset + 8 else { return nil }
        var value: UInt64 = 0
        for byte in bytes.dropFirst(offset).prefix(8) {
            value = value << 8 | UInt64(byte)
        }
        self = value
    }
}

extension UInt32 {
    @inlinable
    public var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }

    @inlinable
    public init?(bigEndianBytes bytes: some Collection<UInt8>, at offset: Int = 0) {
        guard bytes.count >= offset + 4 else { return nil }
        var value: UInt32 = 0
        for byte in bytes.dropFirst(offset).prefix(4) {
            value = value << 8 | UInt32(byte)
        }
        self = value
    }
}

/// Composite keys: the concatenation of big-endian parts.
public func compositeKey(_ parts: UInt64...) -> [UInt8] {
    var key: [UInt8] = []
    key.reserveCapacity(parts.count * 8)
    for part in parts { key += part.bigEndianBytes }
    return key
}
