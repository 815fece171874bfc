import API
import Client
import Foundation
import GRPCCore
import Testing

/// SIGTERM stops a node through its `ServiceGroup`: a leader hands leadership over first,
/// subscriptions end at once with a status that sends their clients elsewhere, the replica
/// stops last, the process exits cleanly, and the rest of the cluster goes on.
extension ClusterTests {
    @Test func sigtermEndsSubscriptionsWithUnavailableAndExitsCleanly() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        try await cluster.withClient { client in
            let bob = try await client.newUser("bob")
            let alice = try await client.newUser("alice")
            let leader = try await cluster.waitForLeader(client)

            let ended = try await RawChat.withStub(cluster.address(leader), security: cluster.security) { raw in
                try await Chorus_V1_Chat.Client(wrapping: raw).subscribe(.with { $0.token = bob }) { response in
                    var events = response.messages.makeAsyncIterator()
                    let attached = try await events.next()
                    #expect(attached?.attached != nil)
                    cluster.signal(leader, SIGTERM)
                    do {
                        while try await events.next() != nil {}
                        return (code: RPCError.Code?.none, message: "")
                    } catch let error as RPCError {
                        return (code: Optional(error.code), message: error.message)
                    }
                }
            }
            // Ended by the node, not cut at the end of the drain period or with the connection:
            // the leader handed over first, so the stream says where to go.
            #expect(ended.code == .unavailable)
            #expect(ended.message == "leadership moved; subscribe again to the new leader")

            let exit = try await cluster.waitForExit(leader, within: .seconds(15))
            #expect(exit.signaled == false)
            #expect(exit.status == 0)
            #expect(cluster.log(leader).contains("node \(leader) stopped"))
            #expect(cluster.log(leader).contains("node \(leader) handed leadership to node"))

            // The two others elect a leader and take the next message.
            _ = try await cluster.waitForLeader(client, excluding: [leader])
            _ = try await client.send(token: alice, to: "bob", body: "after the shutdown")
            #expect(try await client.history(token: bob, with: "alice", pageSize: 5).messages.map(\.body) == ["after the shutdown"])
        }
    }
    /// With metrics on, after a failover, every survivor stopped with SIGTERM exits 0 and says
    /// "stopped": no service of the node ends on its own first (Hummingbird's `runService`
    /// trapped SIGTERM by itself, and the group reported the metrics listener as failed).
    /// Nor does anything meet an event loop already shut down (the metrics listener's loop was
    /// shut down as its service returned, and NIO said "Cannot schedule tasks on an EventLoop
    /// that has already shut down" in about one stop in four).
    @Test func sigtermAfterAFailoverWithMetricsOnStopsEveryNodeCleanly() async throws {
        let cluster = try TestCluster(size: 3)
        cluster.metrics = true
        try cluster.startAll()
        defer { cluster.stopAll() }
        let leader = try await cluster.withClient { client in
            let alice = try await client.newUser("alice")
            let leader = try await cluster.waitForLeader(client)
            cluster.kill(leader)
            _ = try await cluster.waitForLeader(client, excluding: [leader])
            _ = try await retrying { try await client.send(token: alice, to: "alice", body: "after the failover") }
            return leader
        }
        for id in cluster.ids where id != leader {
            cluster.signal(id, SIGTERM)
            let exit = try await cluster.waitForExit(id, within: .seconds(30))
            let log = cluster.log(id)
            #expect(!exit.signaled && exit.status == 0, "node \(id): \(log.suffix(2_000))")
            #expect(log.contains("node \(id) stopped"), "node \(id): \(log.suffix(2_000))")
            #expect(!log.contains("finished unexpectedly"), "node \(id): \(log.suffix(2_000))")
            #expect(!log.contains("Cannot schedule tasks"), "node \(id): \(log.suffix(2_000))")
        }
    }
}
