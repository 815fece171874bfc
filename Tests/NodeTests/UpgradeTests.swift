import Client
import Foundation
import Launcher
import Synchronization
import Testing

/// Versions with real processes: a cluster of this build raises its cluster version by
/// itself; a build that applies less stops at what it does not know and refuses a data
/// directory past it; and a rolling upgrade from the previous release (a real build of an
/// earlier commit, `scripts/previous-build.sh`) under continuous writes, with a downgrade
/// before the version is raised and one refused after.
@Suite(.serialized) struct UpgradeTests {
    static let editSentence = "editing a message needs cluster version 2; the cluster runs 1 until every node is upgraded"

    /// The switch `CHORUS_TEST_ONE_VERSION_OLDER` makes this build apply cluster version 1
    /// only, as the release before it did.
    static let oneVersionOlder = ["CHORUS_TEST_ONE_VERSION_OLDER": "1"]

    @Test func anOlderBuildStopsAtAnEntryItDoesNotKnowAndRefusesADataDirectoryPastIt() async throws {
        let cluster = try TestCluster(size: 3)
        defer { cluster.stopAll() }
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let raisedIn = try await Self.waitForClusterVersion(3, client)
            print("a new cluster of this build runs cluster version 3 after \(raisedIn.formatted(.units(allowed: [.milliseconds])))")
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            try await client.createGroup(token: alice, name: "team", members: ["bob"])
            _ = try await client.sendToGroup(token: alice, group: "team", body: "in a group")
            let id = try await client.send(token: alice, to: "bob", body: "helo")
            try await client.editMessage(token: alice, id: id, body: "hello")
            let shown = try await client.history(token: alice, with: "bob").messages.first
            #expect(shown?.body == "hello")
            #expect(shown?.editedUnixMs != nil)
            try await cluster.waitForConvergence(client)
            // Every node says what its build applies; the leader, what each member said to it.
            let statuses = await client.status().compactMap(\.status)
            for status in statuses {
                #expect(status.clusterVersion == 3 && status.buildMaxClusterVersion == 3 && status.release == "0.4.0")
            }
            let leader = try #require(statuses.first { $0.role == "leader" })
            #expect(leader.memberBuilds.keys.sorted() == [1, 2, 3] && leader.memberBuilds.values.allSatisfy { $0.maxClusterVersion == 3 && $0.release == "0.4.0" })
        }

        // Its data now holds cluster version 3: the older build refuses to start on it.
        cluster.stop(3)
        try cluster.start(3, environment: Self.oneVersionOlder)
        var exit = try await cluster.waitForExit(3, within: .seconds(30))
        #expect(exit.status == 78)
        #expect(cluster.log(3).contains("the cluster of \(cluster.dataDirectory(3)) runs cluster version 3, and this build (release 0.4.0) applies cluster versions up to 2"))

        // Projections rebuilt from the log, and the identity's record of the version gone (as
        // if the node stopped between applying the raise and recording it): the older build
        // meets the entry that raised the version, and stops before it changes anything.
        try FileManager.default.removeItem(atPath: cluster.dataDirectory(3) + "/state")
        try Self.forgetRecordedVersion(cluster.dataDirectory(3))
        try cluster.start(3, environment: Self.oneVersionOlder)
        exit = try await cluster.waitForExit(3, within: .seconds(30))
        #expect(exit.status == 78 && !exit.signaled, "\(cluster.log(3).suffix(4000))")
        let log = cluster.log(3)
        let line = try #require(log.split(separator: "\n").first { $0.contains("is the cluster version 3, which this build") })
        #expect(line.contains("cluster versions 1...2"))
        let entry = try #require(line.firstMatch(of: /log entry (\d+) is the cluster version 3/).flatMap { UInt64($0.1) })
        let status = try await runTool(["status", "--json", cluster.dataDirectory(3)])
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        func number(_ key: String) -> UInt64? { (fields[key] as? NSNumber)?.uint64Value }
        let applied = try #require(number("applied_index"))
        #expect(applied < entry, "nothing of the batch holding entry \(entry) was applied (applied \(applied))")
        #expect(number("cluster_version") == 1)
        #expect(number("log_format") == 1 && number("state_format") == 1)

        // The build that knows it catches up, and the replicas agree.
        try cluster.start(3)
        try await cluster.withClient { client in try await cluster.waitForConvergence(client, within: .seconds(60)) }
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }

    /// The previous release advertises nothing and is taken for cluster version 1. Nodes are
    /// replaced one at a time (SIGTERM, the new binary on the same data) under continuous
    /// writes; editing is refused until the last old node is gone and the version commits;
    /// a downgrade works before, and is refused after.
    @Test func rollingUpgradeFromThePreviousRelease() async throws {
        let previous = try Self.previousRelease()
        let cluster = try TestCluster(size: 5)
        defer { cluster.stopAll() }
        for id in cluster.ids { try cluster.start(id, executable: previous) }
        try await cluster.withClient(deadline: .seconds(30)) { client in
            _ = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            let writer = Writer()
            let load = Task { await writer.run(client, token: alice) }
            defer { load.cancel() }
            try await Task.sleep(for: .seconds(1))
            let probe = try await client.send(token: alice, to: "bob", body: "to be edited")

            var gaps: [String] = []
            func replace(_ id: Int, with executable: String, _ what: String) async throws {
                let leader = await client.status().compactMap(\.status).first { $0.role == "leader" }?.nodeID
                let started = ContinuousClock.now
                cluster.stop(id)
                try cluster.start(id, executable: executable)
                try await Self.waitForCatchUp(id, client)
                try await Task.sleep(for: .milliseconds(500))
                let gap = writer.longestGap(since: started)
                gaps.append("\(what) node \(id)\(leader == UInt64(id) ? " (the leader)" : ""): longest write gap \(gap.formatted(.units(allowed: [.milliseconds])))")
                try await Self.verifyQuiet(cluster, client, writer)
            }

            try await Self.verifyQuiet(cluster, client, writer)
            for id in [1, 2] { try await replace(id, with: TestCluster.executable.path, "upgraded") }
            // A downgrade before the version is raised: the node runs the old build again.
            try await replace(2, with: previous, "downgraded")
            try await replace(2, with: TestCluster.executable.path, "upgraded again")
            for id in [3, 4] { try await replace(id, with: TestCluster.executable.path, "upgraded") }

            // Node 5 still runs the previous release: editing is refused, with the sentence,
            // by a leader of this build.
            let admin = MembershipTests.admin(cluster)
            _ = try await admin.transferLeadership(to: 1)
            try await Self.expectRefused(client, token: alice, id: probe)
            await #expect(throws: ChorusError.failedPrecondition("using groups needs cluster version 3; the cluster runs 1 until every node is upgraded")) {
                try await client.createGroup(token: alice, name: "team", members: ["bob"])
            }
            #expect(await client.status().compactMap(\.status).first { $0.role == "leader" }?.clusterVersion == 1)

            // The last one: the version commits within a moment, and editing works.
            cluster.stop(5)
            try cluster.start(5)
            let upgraded = ContinuousClock.now
            let took = try await Self.waitForClusterVersion(3, client)
            gaps.append("cluster version 3 committed \(took.formatted(.units(allowed: [.milliseconds]))) after node 5 (the last) started on this build, \((ContinuousClock.now - upgraded).formatted(.units(allowed: [.milliseconds]))) in all")
            try await cluster.waitForConvergence(client, within: .seconds(60))
            let editedAt = try await client.editMessage(token: alice, id: probe, body: "edited after the upgrade")
            #expect(editedAt > 0)
            try await client.createGroup(token: alice, name: "team", members: ["bob"])
            _ = try await client.sendToGroup(token: alice, group: "team", body: "after the upgrade")

            // A downgrade now is refused. The previous release will not start on the directory:
            // its identity records the version (the old build takes the line for another owner).
            try await cluster.waitForConvergence(client, within: .seconds(60))
            cluster.stop(3)
            var lengthBefore = cluster.log(3).utf8.count
            try cluster.start(3, executable: previous)
            let exit = try await cluster.waitForExit(3, within: .seconds(30))
            #expect(exit.status != 0 && !exit.signaled)
            let refusedStart = String(cluster.log(3).utf8.dropFirst(lengthBefore)) ?? ""
            #expect(refusedStart.contains("cluster-version=3") && refusedStart.contains("refusing to start"), "\(refusedStart.suffix(2000))")

            // Forced past that (the line removed by hand), its peers refuse it with the
            // sentence, and it applies nothing more: no entry, and no commit index for what
            // its own log holds.
            try Self.forgetRecordedVersion(cluster.dataDirectory(3))
            let appliedBefore = try await Self.appliedIndex(cluster.dataDirectory(3))
            lengthBefore = cluster.log(3).utf8.count
            try cluster.start(3, executable: previous)
            try await Task.sleep(for: .seconds(3))
            let oldLog = String(cluster.log(3).utf8.dropFirst(lengthBefore)) ?? ""
            #expect(oldLog.contains("refuses this node"), "the downgraded node was told:\n\(oldLog.suffix(2000))")
            #expect(oldLog.contains("node 3 runs a release before 0.3.0, which applies cluster versions up to 1; this cluster runs cluster version 3"))
            #expect(cluster.ids.filter { $0 != 3 }.contains { cluster.log($0).contains("refused node 3: node 3 runs a release before 0.3.0") })
            try await client.editMessage(token: alice, id: probe, body: "edited while node 3 is refused")
            try await Task.sleep(for: .seconds(1))
            let three = await client.status().compactMap(\.status).first { $0.nodeID == 3 }
            #expect(three?.appliedIndex == appliedBefore, "node 3 applied \(three?.appliedIndex ?? 0), it had \(appliedBefore)")
            try await replace(3, with: TestCluster.executable.path, "upgraded after the refused downgrade")

            load.cancel()
            let (acknowledged, unknown) = writer.outcomes()
            let history = try await Self.conversation(client, token: alice)
            var seen: [String: Int] = [:]
            for message in history { seen[message.body, default: 0] += 1 }
            let lost = acknowledged.filter { seen[$0] != 1 }
            #expect(lost.isEmpty, "acknowledged writes not present exactly once: \(lost.prefix(10))")
            #expect(seen.values.allSatisfy { $0 == 1 }, "a write stored twice")
            #expect(history.first { $0.id == probe }?.body == "edited while node 3 is refused")
            print("rolling upgrade: \(acknowledged.count) writes acknowledged, \(unknown) unknown outcomes; " + gaps.joined(separator: "; "))
        }
        cluster.stopAll()
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }

    // MARK: Helpers

    /// The previous release's `chorus-node`: `CHORUS_PREVIOUS_NODE`, or where
    /// `scripts/previous-build.sh` keeps it. The script compiles in `.build`, so a test never
    /// runs it: `scripts/test.sh` builds the release before everything else.
    static func previousRelease() throws -> String {
        if let path = ProcessInfo.processInfo.environment["CHORUS_PREVIOUS_NODE"], FileManager.default.isExecutableFile(atPath: path) { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let kept = try? FileManager.default.contentsOfDirectory(atPath: root + "/.build-previous")
        guard let path = kept?.sorted().map({ root + "/.build-previous/" + $0 + "/chorus-node" }).first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw TestFailure("the previous release is not built: run scripts/previous-build.sh, then swift build --build-tests (scripts/test.sh does both)")
        }
        return path
    }

    /// Polls the leader's status until it says `version`; returns how long that took.
    static func waitForClusterVersion(_ version: UInt32, _ client: ChorusClient, within: Duration = .seconds(30)) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < within {
            let statuses = await client.status().compactMap(\.status)
            if let leader = statuses.filter({ $0.role == "leader" }).max(by: { $0.term < $1.term }), leader.clusterVersion >= version { return clock.now - start }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("the cluster version did not reach \(version) within \(within)")
    }

    /// Waits until node `id` answers and has applied what the leader had committed when the
    /// wait began (writes go on meanwhile).
    static func waitForCatchUp(_ id: Int, _ client: ChorusClient, within: Duration = .seconds(60)) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        var target: UInt64?
        while clock.now - start < within {
            let statuses = await client.status().compactMap(\.status)
            if target == nil { target = statuses.filter { $0.role == "leader" }.max(by: { $0.term < $1.term })?.commitIndex }
            if let target, let node = statuses.first(where: { $0.nodeID == UInt64(id) }), node.appliedIndex >= target { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("node \(id) did not catch up within \(within)")
    }

    /// Removes the `cluster-version=` line from a data directory's identity, as if the node
    /// had stopped before recording the version it applied.
    static func forgetRecordedVersion(_ directory: String) throws {
        let identity = directory + "/identity"
        let kept = try String(contentsOfFile: identity, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("cluster-version=") }
        try (kept.joined(separator: "\n") + "\n").write(toFile: identity, atomically: true, encoding: .utf8)
    }

    static func appliedIndex(_ directory: String) async throws -> UInt64 {
        let status = try await runTool(["status", "--json", directory])
        let fields = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
        return try #require((fields?["applied_index"] as? NSNumber)?.uint64Value)
    }

    static func expectRefused(_ client: ChorusClient, token: String, id: UInt64) async throws {
        do {
            try await client.editMessage(token: token, id: id, body: "too early")
            Issue.record("an edit was accepted while a node runs the previous release")
        } catch let ChorusError.failedPrecondition(message) {
            #expect(message == editSentence)
        }
    }

    /// With the writer paused and every node caught up, `chorus-tools verify` over all five
    /// data directories (read-only, beside the running nodes).
    static func verifyQuiet(_ cluster: TestCluster, _ client: ChorusClient, _ writer: Writer) async throws {
        writer.pause(true)
        defer { writer.pause(false) }
        try await Task.sleep(for: .milliseconds(300))
        try await cluster.waitForConvergence(client, within: .seconds(60))
        let verify = try await runTool(["verify"] + cluster.ids.map(cluster.dataDirectory))
        #expect(verify.status == 0, "\(verify.output)")
    }

    static func conversation(_ client: ChorusClient, token: String) async throws -> [ChatMessage] {
        var all: [ChatMessage] = []
        var page: String?
        repeat {
            let result = try await client.history(token: token, with: "bob", pageSize: 1000, pageToken: page, oldestFirst: true)
            all += result.messages
            page = result.nextPageToken
        } while page != nil
        return all
    }

    /// Sends one message at a time until cancelled; remembers what was acknowledged and when.
    final class Writer: Sendable {
        private struct State {
            var acknowledged: [(body: String, at: ContinuousClock.Instant)] = []
            var unknown = 0
            var paused = false
        }
        private let state = Mutex(State())

        func pause(_ paused: Bool) { state.withLock { $0.paused = paused } }

        func run(_ client: ChorusClient, token: String) async {
            var i = 0
            while !Task.isCancelled {
                if state.withLock({ $0.paused }) {
                    try? await Task.sleep(for: .milliseconds(20))
                    continue
                }
                i += 1
                let body = "write \(i)"
                do {
                    _ = try await client.send(token: token, to: "bob", body: body)
                    state.withLock { $0.acknowledged.append((body, .now)) }
                } catch {
                    state.withLock { $0.unknown += 1 }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }

        /// The longest time without an acknowledged write since `start` (up to now).
        func longestGap(since start: ContinuousClock.Instant) -> Duration {
            state.withLock { state in
                var previous = start
                var longest = Duration.zero
                for ack in state.acknowledged where ack.at > start {
                    longest = max(longest, ack.at - previous)
                    previous = ack.at
                }
                return max(longest, ContinuousClock.now - previous)
            }
        }

        func outcomes() -> (acknowledged: [String], unknown: Int) {
            state.withLock { ($0.acknowledged.map(\.body), $0.unknown) }
        }
    }
}
