import Client
import Foundation
import Synchronization
import Testing

/// Backups with real processes: taken from a follower while writes go on, every write
/// acknowledged before the command started is in the file, the file checks out offline (and a
/// damaged one does not), and a new cluster restored from it serves that content.
extension ClusterTests {
    @Test func aBackupTakenUnderLoadHoldsEveryAcknowledgedWriteAndRestoresIntoANewCluster() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let file = cluster.root + "/chorus.backup"
        let files = cluster.credentials(0)
        let admin = ["--endpoints", cluster.ids.map(cluster.peerAddress).joined(separator: ","), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
        let (alice, acknowledged) = try await cluster.withClient { client in
            let alice = try await client.newUser("alice", password: "pw-alice")
            _ = try await client.newUser("bob")
            let acknowledged = Mutex<[String]>([])
            let load = Task {
                var n = 0
                while !Task.isCancelled {
                    n += 1
                    if (try? await client.send(token: alice, to: "bob", body: "m\(n)")) != nil { acknowledged.withLock { $0.append("m\(n)") } }
                }
            }
            try await Task.sleep(for: .seconds(1))
            let before = acknowledged.withLock { $0 }
            let taken = try await runTool(["backup", "--out", file] + admin)
            try await Task.sleep(for: .milliseconds(300))
            load.cancel()
            _ = await load.result
            #expect(taken.status == 0, "\(taken.output)")
            #expect(taken.output.contains("backup of cluster 'test' from node "), "\(taken.output)")
            return (alice, before)
        }
        #expect(!acknowledged.isEmpty)

        let verified = try await runTool(["backup", "verify", file])
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("a whole backup of cluster 'test'") && verified.output.contains("checksums and digest match"), "\(verified.output)")

        // One byte changed anywhere: refused, with what is wrong.
        let damaged = file + ".damaged"
        try FileManager.default.copyItem(atPath: file, toPath: damaged)
        let handle = try #require(FileHandle(forUpdatingAtPath: damaged))
        try handle.seek(toOffset: (FileManager.default.attributesOfItem(atPath: damaged)[.size] as? UInt64 ?? 200) / 2)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: (FileManager.default.attributesOfItem(atPath: damaged)[.size] as? UInt64 ?? 200) / 2)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        let refused = try await runTool(["backup", "verify", damaged])
        #expect(refused.status == 1 && refused.output.contains("is damaged"), "\(refused.output)")

        // A new cluster from the backup: its own addresses and certificates, the same content.
        let restored = try TestCluster(size: 3, placement: .inProcess)
        defer { restored.stopAll() }
        let members = restored.ids.flatMap { ["--member", "\($0)=\(restored.peerAddress($0)),\(restored.address($0))"] }
        let made = try await runTool(["restore", file, "--into", restored.root] + members)
        #expect(made.status == 0, "\(made.output)")
        #expect(made.output.contains("runs as incarnation "), "\(made.output)")
        try restored.startAll()
        try await restored.withClient { client in
            _ = try await restored.waitForLeader(client)
            let bodies = Set(try await client.history(token: alice, with: "bob", pageSize: 1_000).messages.map(\.body))
            #expect(acknowledged.allSatisfy(bodies.contains), "missing: \(acknowledged.filter { !bodies.contains($0) }.prefix(10))")
            _ = try await client.send(token: alice, to: "bob", body: "after the restore")
            try await restored.waitForConvergence(client)
        }
        await restored.shutDownAll()
        let verify = try await runTool(["verify"] + restored.ids.map(restored.dataDirectory))
        #expect(verify.status == 0 && verify.output.contains("3 replicas agree"), "\(verify.output)")
    }
}
