import Client
import Foundation
import Testing

/// Membership at runtime with real processes: the configuration comes from the log, nodes
/// join and leave one at a time under load, leadership moves on request, and nothing
/// acknowledged is lost (`chorus-tools verify` over the members at the end).
@Suite(.serialized) struct MembershipTests {
    static func admin(_ cluster: TestCluster) -> ClusterAdmin {
        ClusterAdmin(endpoints: cluster.ids.map(cluster.peerAddress), operator: cluster.operatorCredentials, timeout: .seconds(150))
    }

    /// Sends until cancelled; returns the bodies acknowledged and the failures seen.
    static func load(_ client: ChorusClient, token: String) async -> (acknowledged: [String], failures: [String]) {
        var acknowledged: [String] = []
        var failures: [String] = []
        var i = 0
        while !Task.isCancelled {
            i += 1
            do {
                _ = try await client.send(token: token, to: "bob", body: "load \(i)")
                acknowledged.append("load \(i)")
            } catch {
                if failures.count < 5 { failures.append("\(error)") }
            }
        }
        return (acknowledged, failures)
    }

    @Test func growFromThreeToFiveUnderLoadThenRemoveAndTransfer() async throws {
        let cluster = try TestCluster(size: 5)
        cluster.founders = [1, 2, 3]
        try cluster.startAll()
        defer { cluster.stopAll() }
        let admin = Self.admin(cluster)
        let victim = try await cluster.withClient(deadline: .seconds(30)) { client in
            _ = try await cluster.waitForLeader(client)
            let start = try await admin.members()
            #expect(start.members.map(\.id) == [1, 2, 3])
            #expect(start.members.allSatisfy { $0.voter })
            #expect(start.members.first { $0.id == 2 }?.peerAddress == cluster.peerAddress(2), "addresses come from the log")

            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let load = Task { await Self.load(client, token: alice) }

            // Grow: each new node starts empty with --join, is added as a learner, catches up
            // from the log and is promoted.
            for id in [4, 5] {
                try cluster.start(id)
                let added = try await admin.add(id: UInt64(id), peerAddress: cluster.peerAddress(id), clientAddress: cluster.address(id), promoteWhenCaughtUp: true)
                #expect(added.promoted, "node \(id) caught up and was promoted")
                #expect(added.members.members.first { $0.id == UInt64(id) }?.voter == true)
            }
            let grown = try await admin.members()
            #expect(grown.members.map(\.id) == [1, 2, 3, 4, 5])
            #expect(grown.members.allSatisfy { $0.voter })

            // One change at a time, and no nonsense.
            await #expect(throws: ChorusError.self) { _ = try await admin.promote(id: 4) }
            await #expect(throws: ChorusError.self) { _ = try await admin.add(id: 3, peerAddress: cluster.peerAddress(3), clientAddress: "", promoteWhenCaughtUp: false) }

            // Leadership moves on request, under load.
            let leader = UInt64(try await cluster.waitForLeader(client))
            let target: UInt64 = leader == 4 ? 5 : 4
            let moved = try await admin.transferLeadership(to: target)
            #expect(moved.leader == target)
            print("transfer to node \(target) took \(moved.milliseconds) ms under load")

            // The leader cannot remove itself; another node can be removed.
            await #expect(throws: ChorusError.self) { _ = try await admin.remove(id: target, force: false) }
            let victim: UInt64 = target == 4 ? 1 : 2
            let removed = try await admin.remove(id: victim, force: false)
            #expect(removed.members.members.map(\.id).contains(victim) == false)

            load.cancel()
            let (acknowledged, failures) = await load.value
            #expect(acknowledged.count > 20, "the load ran throughout (\(acknowledged.count) sends; failures: \(failures))")
            // Every acknowledged send is there exactly once, read from the new leader.
            var bodies: [String] = []
            var page: String?
            repeat {
                let history = try await client.history(token: alice, with: "bob", pageSize: 1000, pageToken: page, oldestFirst: true)
                bodies += history.messages.map(\.body)
                page = history.nextPageToken
            } while page != nil
            #expect(Set(acknowledged).isSubset(of: Set(bodies)), "acknowledged sends missing")
            #expect(bodies.count == Set(bodies).count, "a send stored twice")
            cluster.stop(Int(victim))
            try await cluster.waitForConvergence(client, within: .seconds(60))
            return Int(victim)
        }
        cluster.stopAll()
        // The members at the end agree; the removed node stopped where it was cut off.
        let verify = try runTool(["verify"] + cluster.ids.filter { $0 != victim }.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }

    /// A node restarted with different --peer flags keeps the membership its log records.
    @Test func flagsThatDisagreeWithTheLogAreIgnored() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in _ = try await cluster.waitForLeader(client) }
        cluster.stop(3)
        cluster.founders = [1, 3]  // node 3 now hears of a two-node cluster
        try cluster.start(3)
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let members = try await Self.admin(cluster).members()
            #expect(members.members.map(\.id) == [1, 2, 3])
        }
        #expect(cluster.log(3).contains("the flags are ignored for membership"))
    }
}
