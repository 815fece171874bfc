import LMDB

/// The on-disk form of an entry: `[format][kind][term: 8][crc32c: 4][payload]`, keyed by the
/// big-endian index. The checksum covers the index too, so an entry copied under the wrong key
/// is caught as surely as a flipped bit.
enum EntryCodec {
    static let format: UInt8 = 1
    static let headerSize = 14

    static func encode(_ entry: LogEntry) -> [UInt8] {
        let crc = checksum(index: entry.index, format: format, kind: entry.kind, term: entry.term, payload: entry.payload)
        // One allocation: the header is written in place, then the payload copied after it.
        return [UInt8](unsafeUninitializedCapacity: headerSize + entry.payload.count) { buffer, count in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw[0] = format
            raw[1] = entry.kind
            raw.storeBytes(of: entry.term.bigEndian, toByteOffset: 2, as: UInt64.self)
            raw.storeBytes(of: crc.bigEndian, toByteOffset: 10, as: UInt32.self)
            entry.payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: raw[headerSize...]).copyMemory(from: $0) }
            count = headerSize + entry.payload.count
        }
    }

    static func decode(index: UInt64, _ bytes: UnsafeRawBufferPointer, path: String) throws -> LogEntry {
        guard bytes.count >= headerSize, bytes[0] == format,
              let term = UInt64(bigEndianBytes: bytes, at: 2),
              let stored = UInt32(bigEndianBytes: bytes, at: 10)
        else { throw LogStoreError.corruptEntry(index: index, path: path) }
        let payload = Array(bytes[headerSize...])
        let kind = bytes[1]
        guard stored == checksum(index: index, format: bytes[0], kind: kind, term: term, payload: payload) else {
            throw LogStoreError.corruptEntry(index: index, path: path)
        }
        return LogEntry(index: index, term: term, kind: kind, payload: payload)
    }

    /// The term alone, still verified: a damaged entry is never a source of a term.
    static func term(index: UInt64, _ bytes: UnsafeRawBufferPointer, path: String) throws -> UInt64 {
        try decode(index: index, bytes, path: path).term
    }

    static func checksum(index: UInt64, format: UInt8, kind: UInt8, term: UInt64, payload: [UInt8]) -> UInt32 {
        var header = (index.bigEndian, format, kind, term.bigEndian)
        var crc = withUnsafeBytes(of: &header.0) { CRC32C.update(0, $0) }
        crc = withUnsafeBytes(of: &header.1) { CRC32C.update(crc, $0) }
        crc = withUnsafeBytes(of: &header.2) { CRC32C.update(crc, $0) }
        crc = withUnsafeBytes(of: &header.3) { CRC32C.update(crc, $0) }
        return payload.withUnsafeBytes { CRC32C.update(crc, $0) }
    }
}

/// Fixed-layout records for the small metadata values.
enum MetaCodec {
    static func encode(_ state: StoredHardState) -> [UInt8] {
        let body = state.term.bigEndianBytes + state.vote.bigEndianBytes + state.commit.bigEndianBytes
        return body + CRC32C.checksum(body).bigEndianBytes
    }

    static func decodeHardState(_ bytes: [UInt8]) -> StoredHardState? {
        guard bytes.count == 28, verify(bytes),
              let term = UInt64(bigEndianBytes: bytes, at: 0),
              let vote = UInt64(bigEndianBytes: bytes, at: 8),
              let commit = UInt64(bigEndianBytes: bytes, at: 16)
        else { return nil }
        return StoredHardState(term: term, vote: vote, commit: commit)
    }

    static func encode(_ meta: StoredSnapshot) -> [UInt8] {
        let body = meta.index.bigEndianBytes + meta.term.bigEndianBytes + meta.configuration
        return body + CRC32C.checksum(body).bigEndianBytes
    }

    static func decodeSnapshot(_ bytes: [UInt8]) -> StoredSnapshot? {
        guard bytes.count >= 20, verify(bytes),
              let index = UInt64(bigEndianBytes: bytes, at: 0),
              let term = UInt64(bigEndianBytes: bytes, at: 8)
        else { return nil }
        return StoredSnapshot(index: index, term: term, configuration: Array(bytes[16..<(bytes.count - 4)]))
    }

    private static func verify(_ bytes: [UInt8]) -> Bool {
        let body = Array(bytes.dropLast(4))
        return UInt32(bigEndianBytes: bytes, at: bytes.count - 4) == CRC32C.checksum(body)
    }
}
