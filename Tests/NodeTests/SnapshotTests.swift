import Client
import Foundation
import Launcher
import Projections
import Synchronization
import Testing

/// Snapshots in running clusters: a follower too far behind for the log is caught up by
/// InstallSnapshot, and a crash at any step of installing it leaves a node that recovers.
extension ClusterTests {
    /// Messages sent while the follower is down (CHORUS_SNAPSHOT_TEST_MESSAGES overrides):
    /// enough for a snapshot of several 256 KiB chunks (about 1.8 MB), so the transfer broken
    /// off at 300 KiB resumes part-way. 50,000 took 98 s of CI and covered nothing more.
    static var lagMessages: Int {
        ProcessInfo.processInfo.environment["CHORUS_SNAPSHOT_TEST_MESSAGES"].flatMap(Int.init) ?? 8_000
    }

    @Test func followerFarBehindRejoinsByInstallSnapshot() async throws {
        let cluster = try TestCluster()
        cluster.extraArguments = ["--snapshot-interval", "0", "--snapshot-keep", "1000"]
        try cluster.startAll()
        let lagging = try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let lagging = cluster.ids.first { $0 != leader }!
            let tokens = try await createUsers(client, count: 16)
            cluster.kill(lagging)
            try await sendMessages(client, tokens: tokens, total: Self.lagMessages)
            // A follower learns the last commit index from the leader's next append or
            // heartbeat, so it may not have applied the last sends yet when they return.
            try await cluster.waitForConvergence(client, within: .seconds(60))
            // Every running node compacts, so whichever leads sends a snapshot.
            for id in cluster.ids where id != lagging {
                let taken = try await takeSnapshot(endpoint: cluster.peerAddress(id), operator: cluster.operatorCredentials)
                #expect(taken.logFirstIndex > 1 && taken.index >= UInt64(Self.lagMessages))
            }
            // The first transfer is broken off part-way, and must resume.
            try cluster.start(lagging, environment: ["CHORUS_TEST_SNAPSHOT_DROP_AT": "\(300 << 10)"])
            try await cluster.waitForConvergence(client, within: .seconds(120))
            return lagging
        }
        let log = cluster.log(lagging)
        #expect(log.contains("installed the leader's snapshot"), "the follower caught up by snapshot")
        #expect(log.contains("resuming the snapshot at index"), "the broken-off transfer resumed where it stopped")
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
        let status = try await runTool(["status", cluster.dataDirectory(lagging), "--json"])
        #expect(status.output.contains("\"snapshot_index\""), "\(status.output)")
    }

    /// Kills the follower at each step of receiving and installing a snapshot (and of taking
    /// one); each time it restarts without the crash point and converges.
    @Test(arguments: [
        "snapshot-received", "snapshot-adopted", "install-begin", "install-log",
        "install-state-copied", "install-current", "snapshot-stored",
    ])
    func crashDuringSnapshotWorkLeavesANodeThatRecovers(point: String) async throws {
        let cluster = try TestCluster()
        cluster.extraArguments = ["--snapshot-interval", "0", "--snapshot-keep", "20"]
        try cluster.startAll()
        let follower = try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let follower = cluster.ids.first { $0 != leader }!
            let tokens = try await createUsers(client, count: 4)
            if point == "snapshot-stored" {
                // Taking a snapshot: the follower dies between storing it and compacting.
                try await sendMessages(client, tokens: tokens, total: 200)
                try await cluster.waitForConvergence(client)
                cluster.kill(follower)
                try cluster.start(follower, environment: ["CHORUS_CRASH_AT": point])
                try await cluster.waitForConvergence(client, within: .seconds(30))
                _ = try? await takeSnapshot(endpoint: cluster.peerAddress(follower), operator: cluster.operatorCredentials, timeout: .seconds(10))
            } else {
                cluster.kill(follower)
                try await sendMessages(client, tokens: tokens, total: 200)
                for id in cluster.ids where id != follower {
                    _ = try await takeSnapshot(endpoint: cluster.peerAddress(id), operator: cluster.operatorCredentials)
                }
                try cluster.start(follower, environment: ["CHORUS_CRASH_AT": point])
            }
            let exit = try await cluster.waitForExit(follower, within: .seconds(60))
            #expect(exit.signaled && exit.status == SIGKILL, "the node died at \(point)")
            try cluster.start(follower)
            try await sendMessages(client, tokens: tokens, total: 20)
            try await cluster.waitForConvergence(client, within: .seconds(60))
            return follower
        }
        #expect(cluster.log(follower).contains("crash point '\(point)' reached"))
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }
}

// MARK: Helpers

func createUsers(_ client: ChorusClient, count: Int) async throws -> [String] {
    var tokens: [String] = []
    for n in 0..<count { tokens.append(try await client.newUser("user\(n)")) }
    return tokens
}

/// Sends `total` messages round-robin between the users, 4 concurrent senders per user.
func sendMessages(_ client: ChorusClient, tokens: [String], total: Int) async throws {
    let workers = tokens.count * 4
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<workers {
            group.addTask {
                let from = worker % tokens.count
                for n in stride(from: worker, to: total, by: workers) {
                    _ = try await client.send(token: tokens[from], to: "user\((from + 1) % tokens.count)", body: "m\(n)")
                }
            }
        }
        try await group.waitForAll()
    }
}

/// Runs `chorus-tools` from the build directory; stdout and stderr together.
func runTool(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await offThePool { try NodeProcesses.run(TestCluster.executable.deletingLastPathComponent().appendingPathComponent("chorus-tools").path, arguments) }
}

/// Runs `body` (a wait for a child process) on a thread of its own: a test that waits must not
/// hold one of the cooperative pool's threads (two on this machine), which the nodes running
/// in this process and every other test's client need meanwhile.
func offThePool<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs `chorus-lab` (benchmarks, the fault-injection suite) from the build directory.
func runLab(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await offThePool { try NodeProcesses.run(TestCluster.executable.deletingLastPathComponent().appendingPathComponent("chorus-lab").path, arguments) }
}

/// Runs `command` (through env) and returns its standard output; throws if it fails, or
/// kills it and throws if it runs longer than `limit` (a client that hangs fails its test
/// rather than the whole suite's time).
func runCommand(_ command: [String], limit: Duration = .seconds(180)) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let pid = process.processIdentifier
    let killed = Mutex(false)
    let seconds = Double(limit.components.seconds)
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
        killed.withLock { killed in
            guard process.isRunning else { return }
            killed = true
            kill(pid, SIGKILL)
        }
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    if killed.withLock({ $0 }) { throw TestFailure("\(command[0]) ran longer than \(limit) and was killed") }
    guard process.terminationStatus == 0 else { throw TestFailure("\(command[0]) exited with \(process.terminationStatus)") }
    return String(decoding: data, as: UTF8.self)
}
