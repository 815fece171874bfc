import NIOCore
import NIOEmbedded
import Testing
@testable import Node

/// The shaper in front of the HTTP/2 handler, on an embedded channel with virtual time: what
/// it hands on, byte for byte, and when.
@Suite struct PingShaperTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
            + [UInt8(stream >> 24 & 0xff), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    static func ping(_ n: UInt8, ack: Bool = false) -> [UInt8] { frame(type: 6, flags: ack ? 1 : 0, payload: [n, 0, 0, 0, 0, 0, 0, 0]) }
    static func data(_ bytes: Int, stream: UInt32 = 1) -> [UInt8] { frame(type: 0, stream: stream, payload: [UInt8](repeating: 7, count: bytes)) }

    /// A channel with a shaper of `budget`, and a way to feed it and collect what it passed.
    struct Harness {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop

        init(_ budget: PingShaper.Budget) throws {
            loop = EmbeddedEventLoop()
            channel = EmbeddedChannel(handler: PingShaper(budget: budget), loop: loop)
        }

        func feed(_ bytes: [UInt8], in pieces: Int = 1) throws {
            let size = max(1, (bytes.count + pieces - 1) / pieces)
            for start in stride(from: 0, to: bytes.count, by: size) {
                try channel.writeInbound(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + size)]))
            }
        }

        /// Everything handed on so far, joined.
        func passed() throws -> [UInt8] {
            var all: [UInt8] = []
            while let buffer = try channel.readInbound(as: ByteBuffer.self) { all += Array(buffer.readableBytesView) }
            return all
        }
    }

    @Test func everyByteOtherThanExcessPingsPassesUnchangedHoweverTheReadsSplitIt() throws {
        for (bytes, pieces) in [(40_000, 1), (40_000, 7), (300, 0)] {
            let stream = Self.preface + Self.frame(type: 4, payload: []) + Self.data(bytes) + Self.ping(1) + Self.data(3)
                + Self.ping(2, ack: true) + Self.ping(3) + Self.data(10, stream: 3)
            let harness = try Harness(.init(capacity: 2, interval: .seconds(1), maxHeld: 4))
            // 0: one byte per read.
            try harness.feed(stream, in: pieces == 0 ? stream.count : pieces)
            #expect(try harness.passed() == stream, "in \(pieces) reads")
        }
    }

    @Test func pingsPastTheBudgetAreHeldAndHandedOnAsTokensComeBack() throws {
        let harness = try Harness(.init(capacity: 2, interval: .seconds(1), maxHeld: 4))
        try harness.feed(Self.preface)
        _ = try harness.passed()
        try harness.feed(Self.ping(1) + Self.ping(2) + Self.ping(3) + Self.data(5) + Self.ping(4))
        // Two tokens: the first two pass; 3 and 4 wait, the data between does not.
        #expect(try harness.passed() == Self.ping(1) + Self.ping(2) + Self.data(5))
        // An answer to one of the node's own pings needs no token.
        try harness.feed(Self.ping(9, ack: true))
        #expect(try harness.passed() == Self.ping(9, ack: true))
        harness.loop.advanceTime(by: .seconds(1))
        #expect(try harness.passed() == Self.ping(3))
        harness.loop.advanceTime(by: .seconds(1))
        #expect(try harness.passed() == Self.ping(4))
        harness.loop.advanceTime(by: .seconds(5))
        #expect(try harness.passed() == [])
        // The bucket refilled to its capacity, not beyond.
        try harness.feed(Self.ping(5) + Self.ping(6) + Self.ping(7))
        #expect(try harness.passed() == Self.ping(5) + Self.ping(6))
    }

    @Test func aFloodPastTheHeldBoundIsHandedOnForTheHTTP2LayerToRefuse() throws {
        let harness = try Harness(.init(capacity: 1, interval: .seconds(1), maxHeld: 2))
        try harness.feed(Self.preface)
        _ = try harness.passed()
        try harness.feed((1...6).flatMap { Self.ping($0) })
        // One on its token, two held, the other three passed at once.
        #expect(try harness.passed() == Self.ping(1) + Self.ping(4) + Self.ping(5) + Self.ping(6))
    }
}
