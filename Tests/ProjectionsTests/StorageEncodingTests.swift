import Foundation
import Testing
@testable import Projections

/// The hand-written message row encoding must be byte for byte what SwiftProtobuf writes:
/// rows stored either way are read back, compared and digested as one.
@Suite struct StorageEncodingTests {
    static let texts = ["", "a", "bob", "ünïcödé ✉️ 你好", String(repeating: "x", count: 127), String(repeating: "y", count: 128), String(repeating: "z", count: 20_000)]
    static let numbers: [UInt64] = [0, 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64.max]

    @Test func matchesSwiftProtobuf() throws {
        var random = SystemRandomNumberGenerator()
        for round in 0..<2_000 {
            var row = MessageRow()
            row.id = Self.numbers.randomElement(using: &random)!
            row.senderID = Self.numbers.randomElement(using: &random)!
            row.sender = Self.texts.randomElement(using: &random)!
            row.recipientID = Self.numbers.randomElement(using: &random)!
            row.recipient = Self.texts.randomElement(using: &random)!
            row.body = Self.texts.randomElement(using: &random)!
            row.sentMs = [0, 1, -1, Int64.min, Int64.max, 1_764_000_000_000].randomElement(using: &random)!
            row.delivered = round % 3 == 0
            let expected: [UInt8] = try row.serializedBytes()
            #expect(row.storageBytes() == expected, "\(row)")
            #expect(try MessageRow(serializedBytes: row.storageBytes()) == row)
        }
    }

    /// Every number at its longest varint and strings whose lengths take three bytes: the
    /// most bytes besides the strings' own that a row can need.
    @Test func theLongestRowFitsItsBuffer() throws {
        var row = MessageRow()
        (row.id, row.senderID, row.recipientID, row.sentMs, row.delivered) = (.max, .max, .max, .min, true)
        (row.sender, row.recipient, row.body) = (String(repeating: "s", count: 20_000), String(repeating: "r", count: 20_000), String(repeating: "b", count: 20_000))
        let expected: [UInt8] = try row.serializedBytes()
        #expect(row.storageBytes() == expected)
    }

    @Test func tokenKeysCompareEveryByte() {
        let a = Data((0..<32).map { UInt8($0) })
        var b = a
        b[31] ^= 1
        #expect(TokenKey(a) == TokenKey(a))
        #expect(TokenKey(a) != TokenKey(b), "same first word, different last byte")
        #expect(TokenKey(Data(a.prefix(31))) == nil)
    }
}
