import Client
import Foundation
import Testing

/// The projections skip fsync, so a power loss may leave them torn; the log is fsynced. A node
/// that finds it stopped uncleanly on an earlier boot rebuilds its projections from its newest
/// snapshot and its log before it serves; a process killed on the same boot keeps them.
extension ClusterTests {
    @Test func projectionsAreRebuiltAfterAnUncleanStopOnAnEarlierBoot() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let victim = try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let victim = leader == 3 ? 2 : 3
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            for i in 0..<40 { _ = try await client.send(token: alice, to: "bob", body: "before the snapshot \(i)") }
            _ = try await takeSnapshot(endpoint: cluster.peerAddress(victim), operator: cluster.operatorCredentials)
            for i in 0..<40 { _ = try await client.send(token: alice, to: "bob", body: "after the snapshot \(i)") }
            try await cluster.waitForConvergence(client)

            // Killed on this boot: the projections are trusted as they are.
            cluster.kill(victim)
            try cluster.start(victim)
            try await cluster.waitForConvergence(client)
            #expect(!cluster.log(victim).contains("did not stop cleanly on an earlier boot"))

            // Now as if the machine lost power: an earlier boot's mark, and torn pages.
            cluster.kill(victim)
            let data = cluster.dataDirectory(victim)
            try Data("boot=00000000-0000-0000-0000-000000000000\n".utf8).write(to: URL(fileURLWithPath: data + "/running"))
            let generation = (try? String(contentsOfFile: data + "/state/CURRENT", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "initial"
            let pages = try FileHandle(forUpdating: URL(fileURLWithPath: data + "/state/\(generation)/data.mdb"))
            for page in [0, 1, 2, 3, 5, 8] {
                try pages.seek(toOffset: UInt64(page * 4096 + 16))
                pages.write(Data(repeating: 0xA5, count: 2048))
            }
            try pages.close()
            try cluster.start(victim)
            for i in 0..<10 { _ = try await client.send(token: alice, to: "bob", body: "after the rebuild \(i)") }
            try await cluster.waitForConvergence(client, within: .seconds(60))
            #expect(cluster.log(victim).contains("did not stop cleanly on an earlier boot"))
            return victim
        }
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
        // A clean stop leaves no mark.
        #expect(!FileManager.default.fileExists(atPath: cluster.dataDirectory(victim) + "/running"))
    }
}

/// The projections' map starts small and grows while the node serves: a cluster started with a
/// 1 MiB map stores several MiB, every replica agrees, and the data file is no larger than the
/// map it grew to.
extension ClusterTests {
    @Test func theProjectionsMapGrowsWhileServing() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        cluster.extraArguments = ["--state-map-size", "1MiB", "--state-map-max", "1GiB"]
        try cluster.startAll()
        defer { cluster.stopAll() }
        let body = String(repeating: "m", count: 32 << 10)
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            for i in 0..<160 { _ = try await client.send(token: alice, to: "bob", body: "\(i) " + body) }
            try await cluster.waitForConvergence(client)
            let history = try await client.history(token: bob, with: "alice", pageSize: 50)
            // A page is bounded in bytes too, so fewer than 50 of these large messages fit.
            #expect(!history.messages.isEmpty && history.nextPageToken != nil)
            #expect(history.messages.first?.body.hasPrefix("159 ") == true)
        }
        for id in cluster.ids {
            let data = cluster.dataDirectory(id)
            let generation = (try? String(contentsOfFile: data + "/state/CURRENT", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "initial"
            let size = try FileManager.default.attributesOfItem(atPath: data + "/state/\(generation)/data.mdb")[.size] as? Int ?? 0
            // 160 × 32 KiB is 5 MiB and more: the map doubled at least three times, to a power of two.
            #expect(size >= 8 << 20 && size <= 64 << 20 && size & (size - 1) == 0, "node \(id): data.mdb is \(size) bytes")
        }
        await cluster.shutDownAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }
}
