import Client
import Foundation
import Testing

/// What a node does when its disk fails: it stops cleanly (exit 74, a critical line naming
/// the cause as an operator would fix it, no crash), the others go on, and once the disk is
/// fixed it starts again and catches up.
extension ClusterTests {
    /// An I/O error from LMDB, injected by the test build (`CHORUS_TEST_DISK_FAULT`) into node
    /// 3's log after 40 commits, on a disk with plenty of room: called an I/O error, not a
    /// full disk. Before, the node died in `fatalError` with a backtrace.
    @Test func aDiskErrorStopsTheNodeCleanlyAndItCatchesUpOnceFixed() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.start(1)
        try cluster.start(2)
        try cluster.start(3, environment: ["CHORUS_TEST_DISK_FAULT": "EIO@log#40"])
        defer { cluster.stopAll() }
        try await cluster.withClient(deadline: .seconds(30)) { client in
            let alice = try await client.newUser("alice")
            var sent = 0
            while cluster.isRunning(3), sent < 2_000 {
                _ = try await client.send(token: alice, to: "alice", body: "message \(sent)")
                sent += 1
            }
            let exit = try await cluster.waitForExit(3, within: .seconds(30))
            let log = cluster.log(3)
            #expect(!exit.signaled && exit.status == 74, "\(exit) \(log.suffix(2_000))")
            #expect(log.contains("critical"), "\(log.suffix(2_000))")
            #expect(log.contains("writing the Raft log failed: the disk holding \(cluster.dataDirectory(3))/log reported an I/O error"), "\(log.suffix(2_000))")
            #expect(!log.contains("Fatal error") && !log.contains("crashed"), "\(log.suffix(2_000))")
            // The other two serve on; node 3, its disk "fixed", starts again and catches up.
            _ = try await client.send(token: alice, to: "alice", body: "while node 3 is down")
            // It rebuilds its projections, whose unsynced writes a write-back error may have
            // dropped, before it catches up.
            try cluster.start(3)
            try await cluster.waitForConvergence(client, within: .seconds(60))
            #expect(cluster.log(3).contains("node 3 stopped on a disk failure: its projections were rebuilt from the newest snapshot"), "\(cluster.log(3).suffix(2_000))")
        }
    }

    /// An entry damaged on the leader's disk while it runs (bit rot under a live node) is
    /// caught by its checksum when the leader reads it to catch a follower up: the leader
    /// stops (exit 74) naming the entry, before sending it, and the others go on without it,
    /// the follower caught up by the next leader from its sound copy.
    @Test func aDamagedLogEntryIsNeverSentAndItsReaderStopsNamingIt() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient(deadline: .seconds(30)) { client in
            let alice = try await client.newUser("alice")
            let leader = try await cluster.waitForLeader(client)
            let behind = cluster.ids.first { $0 != leader }!
            cluster.signal(behind, SIGTERM)
            _ = try await cluster.waitForExit(behind, within: .seconds(30))
            let marked = "damaged-on-disk-\(UInt64.random(in: 1...UInt64.max))"
            _ = try await client.send(token: alice, to: "alice", body: marked)
            for n in 0..<20 { _ = try await client.send(token: alice, to: "alice", body: "after it \(n)") }

            // Every copy of the body in the leader's log file gets one byte changed (LMDB's
            // copy-on-write leaves older copies of a page in free pages).
            let path = cluster.dataDirectory(leader) + "/log/data.mdb"
            let file = try Data(contentsOf: URL(fileURLWithPath: path))
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            var damaged = 0
            var from = file.startIndex
            while let found = file.range(of: Data(marked.utf8), in: from..<file.endIndex) {
                try handle.seek(toOffset: UInt64(found.lowerBound + 3))
                handle.write(Data("X".utf8))
                damaged += 1
                from = found.upperBound
            }
            try handle.synchronize()
            try handle.close()
            #expect(damaged > 0)

            try cluster.start(behind)
            let exit = try await cluster.waitForExit(leader, within: .seconds(30))
            let log = cluster.log(leader)
            #expect(!exit.signaled && exit.status == 74, "\(exit) \(log.suffix(2_000))")
            #expect(log.contains(/reading the Raft log failed: log entry [0-9]+ in .*\/log fails its checksum: the replica is damaged; restore it from a peer\. The node stops rather than serve, send or apply a damaged entry/), "\(log.suffix(2_000))")
            #expect(!log.contains("Fatal error") && !log.contains("crashed"), "\(log.suffix(2_000))")
            // The other two carry on, and the follower holds the entry, from a sound copy.
            _ = try await cluster.waitForLeader(client, excluding: [leader])
            _ = try await client.send(token: alice, to: "alice", body: "after the damage")
            let bodies = try await client.history(token: alice, with: "alice", pageSize: 50).messages.map(\.body)
            #expect(bodies.contains(marked) && bodies.contains("after the damage"))
            try await cluster.waitForConvergence(client, within: .seconds(60))
        }
    }

    /// Node 3's data on a 32 MiB tmpfs (a real full file system) with --min-free-space 24MiB:
    /// it stops while there is still room, with a sentence naming the file system, rather than
    /// crash when the projections' memory map cannot be backed (SIGBUS) or an LMDB write comes
    /// up short. Grown, the file system takes the node back, and it catches up.
    @Test func aFillingFileSystemStopsTheNodeBeforeItIsFull() async throws {
        let cluster = try TestCluster(size: 3)
        cluster.extraArguments = ["--min-free-space", "24MiB"]
        let directory = cluster.dataDirectory(3)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try runCommand(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", directory], limit: .seconds(30))
        defer {
            cluster.stopAll()
            _ = try? runCommand(["umount", "-l", directory], limit: .seconds(30))
        }
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(30)) { client in
            let alice = try await client.newUser("alice")
            let body = String(repeating: "0123456789abcdef", count: 4_096)  // 64 KiB
            var sent = 0
            while cluster.isRunning(3), sent < 2_000 {
                _ = try await client.send(token: alice, to: "alice", body: body)
                sent += 1
            }
            let exit = try await cluster.waitForExit(3, within: .seconds(30))
            let log = cluster.log(3)
            #expect(!exit.signaled && exit.status == 74, "\(exit) after \(sent) sends: \(log.suffix(2_000))")
            #expect(log.contains(/the file system holding .*\/node-3\/(log|state) is nearly full \([0-9.]+ MiB free of 32.0 MiB, less than --min-free-space 24.0 MiB\): free space there/), "\(log.suffix(2_000))")
            #expect(!log.contains("Fatal error") && !log.contains("crashed"), "\(log.suffix(2_000))")
            _ = try await client.send(token: alice, to: "alice", body: "while node 3 is down")
            _ = try runCommand(["mount", "-o", "remount,size=512m", directory], limit: .seconds(30))
            try cluster.start(3)
            try await cluster.waitForConvergence(client, within: .seconds(60))
        }
    }
}
