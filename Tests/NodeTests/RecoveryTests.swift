import Client
import Foundation
import Testing

/// Disaster recovery with real processes: three of five nodes are lost for good (SIGKILL,
/// their data gone); `chorus-tools recover` seeds a one-voter cluster from the best of the
/// two survivors, every acknowledged write is there, the cluster grows back to five, nodes of
/// the old cluster are refused, and `verify` agrees over the five.
extension ClusterTests {
    @Test func aClusterThatLostItsMajorityForGoodIsRecoveredFromTheBestSurvivor() async throws {
        let cluster = try TestCluster(size: 5)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let (alice, acknowledged, lost) = try await cluster.withClient { client in
            let alice = try await client.newUser("alice", password: "pw-alice")
            _ = try await client.newUser("bob")
            var acknowledged: [String] = []
            for n in 1...40 {
                _ = try await client.send(token: alice, to: "bob", body: "before the loss \(n)")
                acknowledged.append("before the loss \(n)")
            }
            // The leader and two others are lost for good.
            let leader = try await cluster.waitForLeader(client)
            let lost = [leader] + cluster.ids.filter { $0 != leader }.prefix(2)
            for id in lost { cluster.kill(id) }
            return (alice, acknowledged, lost)
        }
        let survivors = cluster.ids.filter { !lost.contains($0) }
        for id in survivors { cluster.stop(id) }

        // Recovered as the best survivor's id, into a new directory that then takes the old
        // one's place; the survivors' directories are only read.
        let best = survivors[0]
        let recovered = cluster.dataDirectory(best) + ".recovered"
        let result = try await runTool(["recover", "--from", survivors.map(cluster.dataDirectory).joined(separator: ","), "--into", recovered,
                                  "--node", "\(best)", "--peer-address", cluster.peerAddress(best), "--client-address", cluster.address(best)])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("recovered: \(recovered) is node \(best), the only voter of cluster 'test' (incarnation "), "\(result.output)")
        #expect(result.output.contains("writes the old cluster acknowledged after index "), "\(result.output)")
        let old = cluster.dataDirectory(best) + ".old"
        try FileManager.default.moveItem(atPath: cluster.dataDirectory(best), toPath: old)
        try FileManager.default.moveItem(atPath: recovered, toPath: cluster.dataDirectory(best))
        try cluster.start(best)

        try await cluster.withClient { client in
            #expect(try await cluster.waitForLeader(client) == best)
            let bodies = try await Self.allBodies(client, token: alice)
            #expect(acknowledged.allSatisfy(bodies.contains), "lost: \(acknowledged.filter { !bodies.contains($0) })")
            // The session outlived the recovery: it is in the projections.
            _ = try await client.send(token: alice, to: "bob", body: "after the recovery")

            // The other survivor, on its old data, is refused: it belongs to the cluster as
            // it was.
            let other = survivors[1]
            try cluster.start(other)
            try await Task.sleep(for: .seconds(3))
            #expect(cluster.log(other).contains("peer \(best) at \(cluster.peerAddress(best)) refuses this node: this node belongs to incarnation "),
                    "\(cluster.log(other).suffix(2_000))")
            #expect(cluster.log(other).contains("of cluster 'test', not the first: the cluster was started again from a backup or recovered from a survivor, and its nodes from before take no part"),
                    "\(cluster.log(other).suffix(2_000))")
            let members = try await MembershipTests.admin(cluster).members()
            #expect(members.members.map(\.id) == [UInt64(best)], "\(members)")
            cluster.kill(other)

            // Grow back to five: each new member starts empty and joins, told the incarnation.
            let incarnation = try #require(result.output.firstMatch(of: /\(incarnation ([0-9a-f]+)\)/).map { String($0.1) })
            #expect(result.output.contains("--cluster-id test~\(incarnation)"), "\(result.output)")
            cluster.founders = [best]
            cluster.clusterName = "test~" + incarnation
            let admin = MembershipTests.admin(cluster)
            for id in cluster.ids where id != best {
                try? FileManager.default.removeItem(atPath: cluster.dataDirectory(id))
                try cluster.start(id)
                let added = try await admin.add(id: UInt64(id), peerAddress: cluster.peerAddress(id), clientAddress: cluster.address(id), promoteWhenCaughtUp: true)
                #expect(added.promoted, "node \(id) did not catch up")
            }
            #expect(try await admin.members().members.filter(\.voter).count == 5)
            _ = try await client.send(token: alice, to: "bob", body: "five again")
            try await cluster.waitForConvergence(client, within: .seconds(60))
        }
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0 && verify.output.contains("5 replicas agree"), "\(verify.output)")
    }

    /// Every body of alice's conversation with bob, oldest first.
    static func allBodies(_ client: ChorusClient, token: String) async throws -> Set<String> {
        Set(try await client.history(token: token, with: "bob", pageSize: 100).messages.map(\.body))
    }
}
