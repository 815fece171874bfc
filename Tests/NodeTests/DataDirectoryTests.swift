import Foundation
import LMDB
import Launcher
import Testing

/// A data directory holds password and session hashes and a node's promises (its votes, its
/// acknowledged entries): the node keeps it private, refuses a log lost behind its back and a
/// snapshot damaged on disk, rather than start and forget.
extension ClusterTests {
    @Test func aNodesDataIsPrivateAndADirectoryOthersCanReadIsWarnedAbout() async throws {
        let cluster = try TestCluster(size: 1)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await client.newUser("alice")
        }
        cluster.stopAll()
        let dir = cluster.dataDirectory(1)
        for path in [dir, dir + "/identity", dir + "/log", dir + "/log/data.mdb", dir + "/state", dir + "/snapshots", dir + "/lock"] {
            #expect(FileSystem.sharedBits(path) == 0, "\(path) is mode \(String(FileSystem.sharedBits(path) ?? 0o777, radix: 8)) for group and others")
        }
        let state = try FileManager.default.subpathsOfDirectory(atPath: dir + "/state").filter { $0.hasSuffix(".mdb") }
        #expect(!state.isEmpty)
        for file in state { #expect(FileSystem.sharedBits(dir + "/state/" + file) == 0, "\(file)") }

        chmod(dir, 0o755)
        chmod(dir + "/identity", 0o644)
        try cluster.start(1)
        try await cluster.withClient { client in _ = try await cluster.waitForLeader(client) }
        cluster.stopAll()
        #expect(cluster.log(1).contains("other users can read or enter \(dir) (mode 755), \(dir)/identity (mode 644): the data directory holds password and session hashes; run `chmod -R go-rwx \(dir)`"),
                "\(cluster.log(1).suffix(3_000))")
    }

    /// An empty log file (what a copy renamed into place without fsync leaves after a power
    /// loss) opens as a new log: the node would bootstrap or join afresh under its old
    /// identity and forget its votes. It refuses, and says what was lost and what to do.
    @Test func aNodeWhoseLogWasLostRefusesToStart() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await client.newUser("alice")
            try await cluster.waitForConvergence(client)
        }
        cluster.stop(1)
        let log = cluster.dataDirectory(1) + "/log"
        #expect(truncate(log + "/data.mdb", 0) == 0)
        unlink(log + "/lock.mdb")
        try cluster.start(1)
        let exit = try await cluster.waitForExit(1, within: .seconds(20))
        #expect(!exit.signaled && exit.status != 0, "\(cluster.log(1).suffix(2_000))")
        #expect(cluster.log(1).contains("refusing to start: the Raft log in \(log) is empty, but this node has run (its projections applied"), "\(cluster.log(1).suffix(2_000))")
        #expect(cluster.log(1).contains("Restore the directory from a backup, or remove the node from the cluster"))
        cluster.stopAll()
    }

    /// A snapshot whose bytes changed on disk never becomes the projections: rebuilding from
    /// it (after an unclean stop on an earlier boot) is refused with the file named.
    @Test func aDamagedSnapshotIsNeverInstalled() async throws {
        let cluster = try TestCluster(size: 1)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await client.newUser("alice")
        }
        cluster.stopAll()
        let dir = cluster.dataDirectory(1)
        let compacted = try await runTool(["compact", dir])
        #expect(compacted.status == 0, "\(compacted.output)")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: dir + "/snapshots").first { $0 != "incoming" })
        let file = dir + "/snapshots/" + name + "/data.mdb"
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        try handle.seek(toOffset: 5_000)
        try handle.write(contentsOf: Data([0xA5, 0x5A, 0xA5]))
        try handle.close()
        try FileSystem.writeAtomically(Array("boot=an-earlier-boot\n".utf8), to: dir + "/running")
        try cluster.start(1)
        let exit = try await cluster.waitForExit(1, within: .seconds(20))
        #expect(!exit.signaled && exit.status != 0, "\(cluster.log(1).suffix(2_000))")
        #expect(cluster.log(1).contains("(\(file)) is damaged: its size or SHA-256 differ from those recorded when it was stored"), "\(cluster.log(1).suffix(2_000))")
        cluster.stopAll()
    }
}
