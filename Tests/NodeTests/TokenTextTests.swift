import Foundation
@testable import Node
import Testing

/// Session tokens as text agree with Foundation's base64, in both alphabets.
@Suite struct TokenTextTests {
    @Test func roundTripsAndMatchesFoundation() {
        var generator = SystemRandomNumberGenerator()
        for count in 0...40 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let standard = Data(bytes).base64EncodedString()
            let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(TokenText.encode(bytes) == urlSafe)
            #expect(TokenText.decode(urlSafe) == bytes)
            #expect(TokenText.decode(standard) == bytes, "padded standard base64 is accepted too")
        }
    }

    @Test func refusesWhatIsNotBase64() {
        #expect(TokenText.decode("abc$") == nil)
        #expect(TokenText.decode("a") == nil, "one character cannot hold a byte")
        #expect(TokenText.decode("ab cd") == nil)
        #expect(TokenText.decode("é") == nil)
        #expect(TokenText.decode(String(repeating: "A", count: 87)) == nil, "longer than 64 bytes")
        #expect(TokenText.decode(String(repeating: "A", count: 43))?.count == 32)
    }
}
