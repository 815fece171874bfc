import API
import Foundation
import Node
import Projections
import Raft
import SwiftProtobuf

/// `chorus-fuzz seed-corpus DIR`: writes well-formed inputs for every target, the starting
/// points libFuzzer mutates (committed under fuzz/corpus).
enum SeedCorpus {
    static func write(to directory: String) throws {
        try write(peerSeeds(), to: "\(directory)/peer")
        try write(requestSeeds(), to: "\(directory)/request")
        try write(commandSeeds(), to: "\(directory)/command")
    }

    static func write(_ seeds: [[UInt8]], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (n, seed) in seeds.enumerated() {
            _ = FileManager.default.createFile(atPath: "\(directory)/seed-\(n)", contents: Data(seed))
        }
    }

    /// Batches of the messages a real three-server cluster sent while electing a leader and
    /// replicating.
    static func peerSeeds() throws -> [[UInt8]] {
        var cluster = MiniCluster()
        var seen: [Raft.Message] = []
        cluster.cores[0].campaign()
        for step in 0..<12 {
            if step == 4 { cluster.propose(1) }
            if step == 6 { cluster.propose(2) }
            cluster.deliver(rounds: 1) { seen.append($0) }
            if step % 3 == 2 { for slot in cluster.cores.indices { cluster.cores[slot].tick() } }
        }
        var seeds: [[UInt8]] = []
        for chunk in stride(from: 0, to: seen.count, by: 3) {
            let batch = Chorus_V1_PeerBatch.with {
                $0.clusterID = "fuzz"
                $0.messages = seen[chunk..<min(chunk + 3, seen.count)].map(MessageCoding.encode)
            }
            seeds.append(try batch.serializedBytes())
        }
        return seeds
    }

    static func requestSeeds() throws -> [[UInt8]] {
        let requests: [(UInt8, any SwiftProtobuf.Message)] = [
            (0, Chorus_V1_CheckUsernameRequest.with { $0.name = "alice" }),
            (1, Chorus_V1_LoginRequest.with { $0.name = "bob"; $0.password = "pw" }),
            (2, Chorus_V1_ListAccountsRequest.with { $0.pattern = "a*"; $0.pageSize = 2; $0.pageToken = "alice" }),
            (3, Chorus_V1_HistoryRequest.with { $0.otherUser = "bob"; $0.pageSize = 5; $0.pageToken = "9"; $0.oldestFirst = true }),
            (4, Chorus_V1_ReadUndeliveredRequest.with { $0.limit = 3 }),
            (5, Chorus_V1_DeleteMessagesRequest.with { $0.messageIds = [7, 8] }),
            (6, Chorus_V1_SendMessageRequest.with { $0.recipient = "carol"; $0.body = "hi"; $0.requestID = .with { $0.clientID = "c"; $0.sequence = 1 } }),
            (7, Chorus_V1_LogoutRequest.with { $0.token = "token-alice" }),
        ]
        return try requests.map { selector, request in [selector] + (try request.serializedBytes() as [UInt8]) }
    }

    static func commandSeeds() throws -> [[UInt8]] {
        let token = Data(Credentials.tokenHash(Array("token-alice".utf8)))
        let kinds: [Command.OneOf_Kind] = [
            .createAccount(.with { $0.name = "dave"; $0.salt = Data("s".utf8); $0.iterations = 1; $0.passwordHash = Data(repeating: 1, count: 32) }),
            .openSession(.with { $0.name = "alice"; $0.tokenHash = token }),
            .sendMessage(.with { $0.tokenHash = token; $0.recipient = "bob"; $0.body = "hello" }),
            .acknowledge(.with { $0.tokenHash = token; $0.messageIds = [10, 11] }),
            .deleteMessages(.with { $0.tokenHash = token; $0.messageIds = [12] }),
            .closeSession(.with { $0.tokenHash = token }),
            .detachAll(DetachAll()),
        ]
        return try kinds.enumerated().map { n, kind in
            var command = Command()
            command.version = ChatState.commandVersion
            command.clientID = "seed"
            command.sequence = UInt64(n + 1)
            command.timestampMs = 1_700_000_000_000
            command.kind = kind
            return try command.serializedBytes()
        }
    }
}
