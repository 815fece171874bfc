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
        let verify = try runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
        // A clean stop leaves no mark.
        #expect(!FileManager.default.fileExists(atPath: cluster.dataDirectory(victim) + "/running"))
    }
}
