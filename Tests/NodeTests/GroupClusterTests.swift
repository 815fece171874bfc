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

/// The next change to a group on a live stream, skipping other events.
func nextChange(_ iterator: inout Subscription.AsyncIterator) async throws -> ChatMessage? {
    while let event = try await iterator.next() {
        if case let .groupChanged(message) = event { return message }
    }
    return nil
}
