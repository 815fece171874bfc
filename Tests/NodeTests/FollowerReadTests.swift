import API
import Client
import Foundation
import GRPCCore
import Testing

/// Reads served by followers. Part of the serialized edge suite (`EdgeTests`).
extension EdgeTests {
    /// A follower serves a linearizable read: it asks the leader to confirm its leadership and
    /// name its commit index, waits until it has applied that index, and answers from its own
    /// projections. A send the leader acknowledged is in the history every follower returns
    /// right after, without a retry; a write on a follower still goes to the leader.
    @Test func followersServeLinearizableReads() async throws {
        let cluster = try TestCluster(placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let followers = cluster.ids.filter { $0 != leader }
            for n in 0..<5 {
                let id = try await client.send(token: alice, to: "bob", body: "f\(n)")
                for follower in followers {
                    let page = try await RawChat.withStub(cluster.address(follower), security: cluster.security) { grpc in
                        try await Chorus_V1_Chat.Client(wrapping: grpc).history(.with { $0.token = alice; $0.otherUser = "bob"; $0.pageSize = 10 })
                    }
                    #expect(page.messages.first?.id == id && page.messages.first?.body == "f\(n)",
                            "node \(follower) served \(page.messages.first.map { "\($0.id) \($0.body)" } ?? "nothing") after send \(id)")
                    #expect(page.messages.count == n + 1)
                }
            }

            // Creating an account needs the leader: a follower says where it is before hashing.
            let follower = followers[0]
            do {
                _ = try await RawChat.withStub(cluster.address(follower), security: cluster.security) { grpc in
                    try await Chorus_V1_Chat.Client(wrapping: grpc).createAccount(.with {
                        $0.requestID = .with { $0.clientID = "follower-read-test"; $0.sequence = 1 }
                        $0.name = "carol"
                        $0.password = "password-1"
                    })
                }
                Issue.record("a follower created an account")
            } catch let error as RPCError {
                #expect(error.code == .unavailable)
                #expect(error.metadata[stringValues: MetadataKeys.leader].first(where: { _ in true }) == "\(leader)=\(cluster.address(leader))")
            }
        }
    }
}
