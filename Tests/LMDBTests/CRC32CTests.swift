import Testing
@testable import LMDB

@Suite struct CRC32CTests {
    @Test func knownAnswer() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    /// The sliced implementation agrees with the bit-by-bit definition at every length and
    /// alignment, including when a checksum is continued across pieces.
    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000])
    func matchesTheBitwiseDefinition(length: Int) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(CRC32C.checksum(bytes) == reference(bytes))
        let split = length / 3
        let continued = bytes[split...].withUnsafeBytes { tail in
            CRC32C.update(bytes[..<split].withUnsafeBytes { CRC32C.update(0, $0) }, tail)
        }
        #expect(continued == reference(bytes))
    }

    func reference(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
}
