import Client
import Foundation
import Testing

/// Membership at runtime with real processes: the configuration comes from the log, nodes
/// join and leave one at a time under load, leadership moves on request, and nothing
/// acknowledged is lost (`chorus-tools verify` over the members at the end).
@Suite(.serialized, .inProcessClusters) struct MembershipTests {
    static func admin(_ cluster: TestCluster) -> ClusterAdmin {
        ClusterAdmin(endpoints: cluster.ids.map(cluster.peerAddress), operator: cluster.operatorCredentials, timeout: .seconds(150))
    }

    /// Sends until cancelled; returns the bodies acknowledged and the failures seen, and
    /// counts the acknowledged ones in `progress` as it goes.
    static func load(_ client: ChorusClient, token: String, progress: Counter = Counter()) async -> (acknowledged: [String], failures: [String]) {
        var acknowledged: [String] = []
        var failures: [String] = []
        var i = 0
        while !Task.isCancelled {
            i += 1
            do {
                _ = try await client.send(token: token, to: "bob", body: "load \(i)")
                acknowledged.append("load \(i)")
                progress.increment()
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
            let progress = Counter()
            let load = Task { await Self.load(client, token: alice, progress: progress) }

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

            // The load goes on past the changes (a few seconds on an idle machine, on a loaded
            // one the sends are slower): at least 20 more after them, so it demonstrably ran
            // throughout and still runs, whatever the speed.
            let atChangesEnd = progress.value
            let patience = ContinuousClock.now + .seconds(60)
            while progress.value < atChangesEnd + 20, ContinuousClock.now < patience { try await Task.sleep(for: .milliseconds(50)) }
            load.cancel()
            let (acknowledged, failures) = await load.value
            #expect(atChangesEnd > 0, "sends were acknowledged while the membership changed (failures: \(failures))")
            #expect(acknowledged.count >= atChangesEnd + 20, "the load ran on after the changes (\(acknowledged.count) sends; failures: \(failures))")
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
            // The removed node hears it from the members it asks for votes, and stops itself.
            let exit = try await cluster.waitForExit(Int(victim), within: .seconds(30))
            #expect(exit.signaled == false && exit.status == 0)
            #expect(cluster.log(Int(victim)).contains("node \(victim) was removed from the cluster: nodes "), "\(cluster.log(Int(victim)).suffix(2000))")
            try await cluster.waitForConvergence(client, within: .seconds(60))
            return Int(victim)
        }
        cluster.stopAll()
        // The members at the end agree; the removed node stopped where it was cut off.
        let verify = try await runTool(["verify"] + cluster.ids.filter { $0 != victim }.map(cluster.dataDirectory))
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
        // Node 3's own view: the three members its log records, whatever its flags say.
        let own = ClusterAdmin(endpoints: [cluster.peerAddress(3)], operator: cluster.operatorCredentials, timeout: .seconds(10))
        var view: Membership?
        for _ in 0..<100 where view == nil {
            view = try? await own.members()
            if view == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(view?.nodeID == 3)
        #expect(view?.members.map(\.id) == [1, 2, 3])
        #expect(cluster.log(3).contains("--peer names members [1, 3], but the cluster's configuration (from its log) has voters [1, 2, 3] and learners []; the flags are ignored for membership"))
    }

    /// A dead node is replaced: removed, and a fresh node under a new id with an empty
    /// directory joins and catches up by snapshot (the log behind was compacted).
    @Test func replaceAFailedNodeWithAFreshOneThatCatchesUpBySnapshot() async throws {
        let cluster = try TestCluster(size: 4)
        cluster.founders = [1, 2, 3]
        cluster.extraArguments = ["--snapshot-keep", "10"]
        try cluster.startAll()
        defer { cluster.stopAll() }
        let admin = Self.admin(cluster)
        try await cluster.withClient(deadline: .seconds(30)) { client in
            let leader = try await cluster.waitForLeader(client)
            let dead = leader == 3 ? 2 : 3
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            for i in 0..<200 { _ = try await client.send(token: alice, to: "bob", body: "before \(i)") }
            cluster.kill(dead)
            // Compact the survivors' logs, so the newcomer can only be caught up by snapshot.
            for id in [1, 2, 3] where id != dead {
                _ = try await takeSnapshot(endpoint: cluster.peerAddress(id), operator: cluster.operatorCredentials)
            }
            _ = try await admin.remove(id: UInt64(dead), force: false)
            try cluster.start(4)
            let added = try await admin.add(id: 4, peerAddress: cluster.peerAddress(4), clientAddress: cluster.address(4), promoteWhenCaughtUp: true)
            #expect(added.promoted)
            #expect(added.members.members.map(\.id).sorted() == [1, 2, 3, 4].filter { $0 != UInt64(dead) })
            _ = try await client.send(token: alice, to: "bob", body: "after the replacement")
            try await cluster.waitForConvergence(client, within: .seconds(60))
            #expect(cluster.log(4).contains("installed the leader's snapshot"), "the newcomer caught up by snapshot")
            let history = try await client.history(token: alice, with: "bob", pageSize: 1000)
            #expect(history.messages.count == 201)
            cluster.stopAll()
            let verify = try await runTool(["verify"] + [1, 2, 3, 4].filter { $0 != dead }.map(cluster.dataDirectory))
            #expect(verify.status == 0, "\(verify.output)")
        }
    }

    /// A node whose data directory was wiped comes back under its old id: it has forgotten its
    /// votes, so the others refuse it, and say why on both sides.
    @Test func aWipedNodeIsRefusedUnderItsOldID() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let wiped = leader == 3 ? 2 : 3
            let alice = try await client.newUser("alice")
            cluster.kill(wiped)
            try FileManager.default.removeItem(atPath: cluster.dataDirectory(wiped))
            try cluster.start(wiped)
            let clock = ContinuousClock()
            let end = clock.now + .seconds(20)
            let onTheWipedNode = "refuses this node: node \(leader) refuses this stream: node \(wiped)'s data directory was recreated"
            let onTheLeader = "refused node \(wiped): node \(wiped)'s data directory was recreated"
            while clock.now < end, !(cluster.log(wiped).contains(onTheWipedNode) && cluster.log(leader).contains(onTheLeader)) {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(cluster.log(wiped).contains(onTheWipedNode))
            #expect(cluster.log(leader).contains(onTheLeader))
            // The two others go on.
            _ = try await client.send(token: alice, to: "alice", body: "still writing")
            #expect(try await cluster.waitForLeader(client) != wiped)
        }
    }

    /// `chorus-tools member remove` on the leader: it hands leadership over first, then the
    /// new leader removes it; `member list` shows the rest.
    @Test func removingTheLeaderWithTheToolHandsOverFirst() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let leader = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let files = cluster.credentials(0)
        let admin = ["--endpoints", cluster.ids.map(cluster.peerAddress).joined(separator: ","), "--ca", files.ca, "--cert", files.certificate, "--key", files.key]
        let removed = try await runTool(["member", "remove", "\(leader)"] + admin)
        #expect(removed.status == 0, "\(removed.output)")
        #expect(removed.output.contains("node \(leader) led: leadership handed to node "), "\(removed.output)")
        #expect(removed.output.contains("node \(leader) removed (index "), "\(removed.output)")
        let listed = try await runTool(["member", "list"] + admin)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(!listed.output.contains("  \(leader)  "), "\(listed.output)")
        #expect(listed.output.components(separatedBy: "  voter  ").count + listed.output.components(separatedBy: "  leader ").count == 4, "\(listed.output)")
        // The removed node stops itself once the others tell it.
        let exit = try await cluster.waitForExit(leader, within: .seconds(30))
        #expect(exit.signaled == false && exit.status == 0)
        #expect(cluster.log(leader).contains("was removed from the cluster"))
        try await cluster.withClient { client in
            let next = try await cluster.waitForLeader(client, excluding: [leader])
            #expect(next != leader)
            let alice = try await client.newUser("alice")
            _ = try await client.send(token: alice, to: "alice", body: "two voters left, both needed")
        }
    }
    /// Operator commands ask every node at once, each with its own deadline: a stopped member
    /// (its kernel still accepts connections) is named, not waited for. Missing certificates,
    /// a removed id added again and the last voter's removal are answered with sentences.
    @Test func operatorCommandsNameWhoDidNotAnswerAndRefuseInSentences() async throws {
        let cluster = try TestCluster(size: 3)
        try cluster.startAll()
        defer { cluster.stopAll() }
        let leader = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let files = cluster.credentials(0)
        let endpoints = ["--endpoints", cluster.ids.map(cluster.peerAddress).joined(separator: ",")]
        let admin = endpoints + ["--ca", files.ca, "--cert", files.certificate, "--key", files.key]

        let plain = try await runTool(["member", "list"] + endpoints)
        #expect(plain.status == 1, "\(plain.output)")
        #expect(plain.output.contains("the node closed the connection before speaking gRPC: its peer port needs TLS; give --ca, --cert and --key"), "\(plain.output)")

        // Another cluster's CA and operator: the handshake fails, and the sentence says what to check.
        let stranger = try TestCluster(size: 1)
        let other = stranger.credentials(0)
        let foreign = try await runTool(["member", "list", "--answer-within", "5"] + endpoints + ["--ca", other.ca, "--cert", other.certificate, "--key", other.key])
        #expect(foreign.status == 1, "\(foreign.output)")
        #expect(foreign.output.contains("the TLS handshake failed ("), "\(foreign.output)")
        #expect(foreign.output.contains("check that --ca is this cluster's CA, that --cert and --key are an operator certificate it signed, and that this is a peer port"), "\(foreign.output)")
        // A node's certificate, or a file that is not there: named before any connection.
        let node = cluster.credentials(2)
        let notOperator = try await runTool(["member", "list"] + endpoints + ["--ca", node.ca, "--cert", node.certificate, "--key", node.key])
        #expect(notOperator.status == 1, "\(notOperator.output)")
        #expect(notOperator.output.contains("\(node.certificate) is the certificate of node 2 of cluster 'test'; the Admin API takes an operator certificate (`chorus-tools certs operator`)"), "\(notOperator.output)")
        let missing = try await runTool(["member", "list"] + endpoints + ["--ca", files.ca, "--cert", files.certificate + ".gone", "--key", files.key])
        #expect(missing.status == 1 && missing.output.contains("cannot read \(files.certificate).gone"), "\(missing.output)")

        let stopped = cluster.ids.first { $0 != leader }!
        cluster.signal(stopped, SIGSTOP)
        let listed = try await runTool(["member", "list", "--answer-within", "2"] + admin)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("leader: node \(leader) "), "\(listed.output)")
        #expect(listed.output.contains("  no answer from \(cluster.peerAddress(stopped)): "), "\(listed.output)")

        let removed = try await runTool(["member", "remove", "\(stopped)", "--answer-within", "2"] + admin)
        #expect(removed.status == 0, "\(removed.output)")
        #expect(removed.output.contains("node \(stopped) removed (index "), "\(removed.output)")
        let again = try await runTool(["member", "add", "\(stopped)", "--peer-address", cluster.peerAddress(stopped), "--answer-within", "2"] + admin)
        #expect(again.status == 1, "\(again.output)")
        #expect(again.output.contains("node \(stopped) was a member of this cluster and was removed: a removed id is spent"), "\(again.output)")
        cluster.signal(stopped, SIGCONT)
    }

    @Test func theOnlyVoterIsNotRemovedAndTheToolSaysWhy() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let files = cluster.credentials(0)
        let removed = try await runTool(["member", "remove", "1", "--endpoints", cluster.peerAddress(1), "--ca", files.ca, "--cert", files.certificate, "--key", files.key])
        #expect(removed.status == 1, "\(removed.output)")
        #expect(removed.output.contains("node 1 is the cluster's only voter: without it no one could run the cluster. Add another voter first"), "\(removed.output)")
        #expect(!removed.output.contains("USAGE"), "\(removed.output)")
    }
}
