import Client
import Foundation
import Testing
@testable import Node

/// Group conversations through the client API of a running cluster: pushed live to members
/// online, waiting for the others, read N at a time with the direct ones, acknowledged per
/// member; changes in the conversation and on the live streams; groups shown to members only.
@Suite(.inProcessClusters) struct GroupClusterTests {
    @Test func aGroupConversationEndToEnd() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            _ = try await UpgradeTests.waitForClusterVersion(3, client)
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            let carol = try await client.newUser("carol")
            let dave = try await client.newUser("dave")

            // bob is online: the group's creation and its messages reach him live.
            var live = client.subscribe(token: bob).makeAsyncIterator()
            guard case .attached = try await live.next() else { Issue.record("not attached"); return }
            let groupID = try await client.createGroup(token: alice, name: "team", members: ["bob", "carol"])
            guard let created = try await nextChange(&live) else { Issue.record("no change pushed"); return }
            #expect(created.id == groupID && created.group == "team" && created.sender == "alice" && created.change?.kind == .created)
            #expect(created.change?.members == ["bob", "carol"])

            let sent = try await client.sendToGroup(token: alice, group: "team", body: "hello team")
            let pushed = try await nextMessage(&live)
            #expect(pushed?.id == sent && pushed?.group == "team" && pushed?.recipient == "" && pushed?.body == "hello team")

            // carol is offline: it waits for her, with the direct messages, and counts per group.
            let direct = try await client.send(token: alice, to: "carol", body: "just you")
            #expect(try await client.groups(token: carol).map { "\($0.name) \($0.memberCount) \($0.admin) \($0.unreadCount)" } == ["team 3 false 1"])
            #expect(try await client.groups(token: alice).map(\.admin) == [true])
            let read = try await client.readUndelivered(token: carol, limit: 10)
            #expect(read.messages.map(\.id) == [sent, direct])
            #expect(read.messages.first?.group == "team")
            #expect(try await client.groups(token: carol).map(\.unreadCount) == [0])

            // Members, with bob online; the conversation, oldest first.
            let members = try await client.groupMembers(token: alice, group: "team")
            #expect(members.map { "\($0.name)\($0.admin ? "*" : "")\($0.online ? "+" : "")" } == ["alice*", "bob+", "carol"])
            let history = try await client.groupHistory(token: carol, group: "team", oldestFirst: true)
            #expect(history.messages.map(\.id) == [groupID, sent])

            // Not a member: no such group, for reads and writes alike.
            await #expect(throws: ChorusError.notFound("dave is in no group named 'team'")) {
                _ = try await client.groupHistory(token: dave, group: "team")
            }
            await #expect(throws: ChorusError.notFound("dave is in no group named 'team'")) {
                _ = try await client.sendToGroup(token: dave, group: "team", body: "let me in")
            }
            // Only admins change it.
            await #expect(throws: ChorusError.notAuthorized("only an admin of 'team' adds members; bob is not one")) {
                _ = try await client.addGroupMembers(token: bob, group: "team", members: ["dave"])
            }

            // dave joins, bob is removed: both hear of it, bob sees nothing after.
            #expect(try await client.addGroupMembers(token: alice, group: "team", members: ["dave", "bob"]) == 1)
            guard let added = try await nextChange(&live) else { Issue.record("no change pushed"); return }
            #expect(added.change?.kind == .added && added.change?.members == ["dave"])
            #expect(try await client.removeGroupMembers(token: alice, group: "team", members: ["bob"]) == 1)
            guard let removed = try await nextChange(&live) else { Issue.record("no change pushed"); return }
            #expect(removed.change?.kind == .removed && removed.change?.members == ["bob"])
            _ = try await client.sendToGroup(token: carol, group: "team", body: "without bob")
            let after = try await client.send(token: alice, to: "bob", body: "still friends")
            #expect(try await nextMessage(&live)?.id == after)
            #expect(try await client.groups(token: bob).isEmpty)

            // Renamed; alice leaves and carol, who joined before dave, becomes admin.
            try await client.renameGroup(token: alice, group: "team", to: "crew")
            try await client.leaveGroup(token: alice, group: "crew")
            #expect(try await client.groupMembers(token: carol, group: "crew").map { "\($0.name)\($0.admin ? "*" : "")" } == ["carol*", "dave"])
            let lines = try await client.groupHistory(token: carol, group: "crew", oldestFirst: true).messages.compactMap(\.change)
            #expect(lines.map(\.kind) == [.created, .added, .removed, .renamed, .left])
            #expect(lines.last?.newAdmins == ["carol"])
        }
    }
}

extension GroupClusterTests {
    /// `chorus group …`, `send '#team'` and `history '#team'`: output, `--json` and exit codes;
    /// and a deleted account's conversation, still readable.
    @Test func groupsInTheTerminalClient() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        let cli = CLI(endpoints: cluster.endpoints, sessionDirectory: cluster.root, ca: cluster.tls ? cluster.credentials(1).ca : nil)
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            _ = try await UpgradeTests.waitForClusterVersion(3, client)
        }
        for name in ["alice", "bob", "carol", "dave"] {
            let r = try await cli.run(["register", name], stdin: "\(name)-pw\n", session: name)
            #expect(r.status == 0, "\(r)")
        }
        var r = try await cli.run(["group", "create", "team", "bob", "carol"], session: "alice")
        #expect(r.status == 0 && r.stdout.contains("created #team with 3 members"), "\(r)")
        r = try await cli.run(["send", "#team", "hello", "all"], session: "alice")
        #expect(r.status == 0 && r.stdout.hasPrefix("sent #") && r.stdout.contains("to #team"), "\(r)")
        r = try await cli.run(["group", "list"], session: "bob")
        #expect(r.stdout.contains("#team  3 members, 1 unread"), "\(r)")
        r = try await cli.run(["read"], session: "bob")
        #expect(r.status == 0 && r.stdout.contains("alice → #team: hello all"), "\(r)")
        r = try await cli.run(["group", "members", "#team", "--json"], session: "bob")
        let members = (r.json?["members"] as? [[String: Any]])?.map { "\($0["name"] ?? "")\($0["admin"] as? Bool == true ? "*" : "")" }
        #expect(members == ["alice*", "bob", "carol"], "\(r)")

        // Not an admin, not a member, no such group: each its exit code and sentence.
        r = try await cli.run(["group", "add", "team", "dave"], session: "bob")
        #expect(r.status == 6 && r.stderr.contains("only an admin of 'team' adds members"), "\(r)")
        r = try await cli.run(["send", "#team", "let me in"], session: "dave")
        #expect(r.status == 3 && r.stderr.contains("dave is in no group named 'team'"), "\(r)")
        r = try await cli.run(["group", "create", "team"], session: "dave")
        #expect(r.status == 4 && r.stderr.contains("there is already a group named 'team'"), "\(r)")

        r = try await cli.run(["group", "rename", "#team", "crew"], session: "alice")
        #expect(r.status == 0 && r.stdout.contains("#team is now #crew"), "\(r)")
        r = try await cli.run(["group", "leave", "crew"], session: "carol")
        #expect(r.status == 0, "\(r)")
        r = try await cli.run(["history", "#crew", "--oldest-first"], session: "bob")
        let lines = r.stdout.split(separator: "\n").map { String($0.split(separator: "] ", maxSplits: 1).last ?? "") }
        #expect(lines == ["#team: alice created the group with bob, carol", "alice → #crew: hello all",
                          "#crew: alice renamed the group from team", "#crew: carol left"], "\(r)")
        r = try await cli.run(["history", "#crew", "--json"], session: "bob")
        let kinds = (r.json?["messages"] as? [[String: Any]])?.compactMap { ($0["change"] as? [String: Any])?["kind"] as? String }
        #expect(kinds == ["left", "renamed", "created"], "\(r)")

        // alice deletes her account: bob still reads what she wrote him, and is told why.
        r = try await cli.run(["send", "bob", "before I go"], session: "alice")
        r = try await cli.run(["delete-account"], stdin: "alice-pw\n", session: "alice")
        #expect(r.status == 0, "\(r)")
        r = try await cli.run(["history", "alice"], session: "bob")
        #expect(r.status == 0 && r.stdout.contains("(alice deleted their account; what they wrote stays)") && r.stdout.contains("alice → bob: before I go"), "\(r)")
        r = try await cli.run(["group", "members", "crew"], session: "bob")
        #expect(r.stdout.contains("bob ★") && !r.stdout.contains("alice"), "\(r)")
    }
}

/// The next change to a group on a live stream, skipping other events.
func nextChange(_ iterator: inout Subscription.AsyncIterator) async throws -> ChatMessage? {
    while let event = try await iterator.next() {
        if case let .groupChanged(message) = event { return message }
    }
    return nil
}
