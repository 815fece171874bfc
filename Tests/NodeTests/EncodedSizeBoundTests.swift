import API
import Foundation
@testable import Node
import SwiftProtobuf
import Testing

/// The size bound `RequestSizeLimit` trusts is never below a message's encoded size.
@Suite struct EncodedSizeBoundTests {
    func check(_ message: any SwiftProtobuf.Message) throws {
        let exact = try (message.serializedBytes() as [UInt8]).count
        let bound = try #require(try EncodedSizeBound.of(message))
        #expect(bound >= exact, "bound \(bound) under the encoded size \(exact) of \(message)")
        #expect(bound <= exact * 16 + 64, "bound \(bound) far above \(exact)")
    }

    @Test func boundsChatRequestsAndPeerBatches() throws {
        var generator = SystemRandomNumberGenerator()
        func text(_ count: Int) -> String { String((0..<count).map { _ in "aé€😀".randomElement(using: &generator)! }) }
        for round in 0..<200 {
            let send = Chorus_V1_SendMessageRequest.with {
                $0.requestID = .with { $0.clientID = text(round % 40); $0.sequence = .random(in: 0...UInt64.max, using: &generator); $0.firstOutstanding = UInt64(round) }
                $0.token = text(43)
                $0.recipient = text(round % 33)
                $0.body = text(round * 7)
            }
            try check(send)
            try check(Chorus_V1_DeleteMessagesRequest.with {
                $0.token = text(10)
                $0.messageIds = (0..<round).map { _ in .random(in: 0...UInt64.max, using: &generator) }
            })
            try check(Chorus_V1_PeerBatch.with {
                $0.clusterID = text(5)
                $0.senderIncarnation = UInt64(round)
                $0.messages = (0..<(round % 5)).map { index in
                    .with {
                        $0.from = UInt64(index)
                        $0.term = .max
                        $0.append = .with { $0.entries = (0..<index).map { _ in .with { $0.index = .max; $0.data = Data(repeating: 1, count: round) } } }
                    }
                }
            })
            // Fields this build does not know of travel as unknown bytes.
            var unknown = send
            try unknown.merge(serializedBytes: [0xF8, 0x07, 0x01] + Array(repeating: 0, count: 0))
            try check(unknown)
        }
    }
}
