import API
import Client
import Foundation
import GRPCCore
import Testing

/// Every kind of bad input gets a clear status and leaves the node serving. Part of the
/// serialized edge suite (`EdgeTests`), so only one of its clusters runs at a time.
extension EdgeTests {
    @Test func badInputGetsClearStatusesAndTheNodeKeepsServing() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(10)) { client in
            let alice = try await client.newUser("alice", password: "pw")
            let eve = try await client.newUser("eve", password: "pw")
            let id = try await client.send(token: alice, to: "eve", body: "hi")
            let leader = cluster.address(try await cluster.waitForLeader(client))

            func code(_ body: () async throws -> Void) async -> ChorusError? {
                do { try await body(); return nil } catch let error as ChorusError { return error } catch { return .other("\(error)") }
            }
            #expect(await code { try await client.createAccount(name: "", password: "x") } == .invalidInput("the account name is empty"))
            #expect(await code { try await client.createAccount(name: String(repeating: "n", count: 33), password: "x") }?.isInvalidInput == true)
            #expect(await code { try await client.createAccount(name: "ok", password: "") }?.isInvalidInput == true)
            #expect(await code { _ = try await client.send(token: alice, to: "eve", body: String(repeating: "x", count: 65 * 1024)) }?.isInvalidInput == true)
            #expect(await code { _ = try await client.send(token: alice, to: "eve", body: "") }?.isInvalidInput == true)
            #expect(await code { _ = try await client.send(token: alice, to: "nobody", body: "x") }?.isNotFound == true)
            #expect(await code { _ = try await client.send(token: "garbage", to: "eve", body: "x") }?.isWrongCredentials == true)
            #expect(await code { _ = try await client.listAccounts(token: alice, pattern: "a[", pageSize: 10) }?.isInvalidInput == true)
            #expect(await code { _ = try await client.listAccounts(token: alice, pattern: "*", pageSize: 5000) }?.isInvalidInput == true)
            #expect(await code { _ = try await client.history(token: alice, with: "eve", pageToken: "not-a-token") }?.isInvalidInput == true)
            #expect(await code { _ = try await client.deleteMessages(token: eve, ids: [999_999]) }?.isNotFound == true)
            #expect(await code { _ = try await client.acknowledge(token: alice, ids: [id]) }?.isNotAuthorized == true)
            #expect(await code { _ = try await client.login(name: "alice", password: "wrong") }?.isWrongCredentials == true)
            #expect(await code { try await client.deleteAccount(token: alice, password: "wrong") }?.isWrongCredentials == true)

            // No request id on a write.
            let missing = try await RawChat.withStub(leader, security: cluster.security) { raw in
                do {
                    _ = try await Chorus_V1_Chat.Client(wrapping: raw).sendMessage(.with { $0.token = alice; $0.recipient = "eve"; $0.body = "x" })
                    return RPCError.Code?.none
                } catch let error as RPCError { return error.code }
            }
            #expect(missing == .invalidArgument)

            // Bytes that are not a protobuf message, and a method that does not exist.
            let garbage = try await RawChat.rawCall(leader, security: cluster.security, service: "chorus.v1.Chat", method: "SendMessage", bytes: [0xFF, 0xFF, 0xFF, 0x07])
            #expect(garbage == .invalidArgument)
            let unknown = try await RawChat.rawCall(leader, security: cluster.security, service: "chorus.v1.Chat", method: "LaunchMissiles", bytes: [])
            #expect(unknown == .unimplemented)
            // Bigger than the configured request limit: said so, not a bare reset.
            var tooBig = Chorus_V1_SendMessageRequest()
            tooBig.body = String(repeating: "A", count: 600 << 10)
            let huge = try await RawChat.rawCall(leader, security: cluster.security, service: "chorus.v1.Chat", method: "SendMessage", bytes: try tooBig.serializedBytes())
            #expect(huge == .resourceExhausted)

            // Still serving, and nothing was stored by any of it.
            let after = try await client.send(token: alice, to: "eve", body: "still here")
            let history = try await client.history(token: eve, with: "alice", pageSize: 10)
            #expect(history.messages.map(\.body) == ["still here", "hi"])
            #expect(after > id)
        }
    }
}

extension ChorusError {
    var isInvalidInput: Bool { if case .invalidInput = self { true } else { false } }
    var isNotFound: Bool { if case .notFound = self { true } else { false } }
    var isWrongCredentials: Bool { if case .wrongCredentials = self { true } else { false } }
    var isNotAuthorized: Bool { if case .notAuthorized = self { true } else { false } }
}
