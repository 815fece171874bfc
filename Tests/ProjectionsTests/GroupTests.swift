import Foundation
import Testing
@testable import Projections

/// Group conversations in the log (cluster version 3): who may do what, what each member
/// sees and waits for, the limits, and what leaving and deleting take with them.
@Suite struct GroupTests {
    /// A cluster at version 3 with accounts `names`, each logged in.
    static func cluster(_ names: [String]) throws -> (Harness, [String: Data]) {
        let h = try Harness()
        _ = try h.run(.setClusterVersion(.with { $0.version = 3 }))
        var tokens: [String: Data] = [:]
        for name in names {
            _ = try h.createAccount(name).get()
            tokens[name] = try h.login(name)
        }
        return (h, tokens)
    }

    @Test func groupsNeedClusterVersionThreeAndAnOlderBuildStopsAtThem() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let alice = try h.login("alice")
        _ = try h.run(.setClusterVersion(.with { $0.version = 2 }))
        #expect(try h.createGroup(alice, "team", []).rejectionMessage == "using groups needs cluster version 3; the cluster runs 2 until every node is upgraded")
        #expect(try h.state.groups(of: h.userID("alice")).isEmpty)

        let old = try Harness(build: BuildVersions(maxClusterVersion: 2))
        _ = try old.createAccount("alice")
        let error = #expect(throws: UnknownEntry.self) { try old.run(.createGroup(.with { $0.name = "team" })) }
        #expect(error?.what == "a create_group command, from cluster version 3")
        #expect(throws: UnknownEntry.self) { try old.run(.setClusterVersion(.with { $0.version = 3 })) }
    }

    @Test func aGroupMessageIsOneRowAndWaitsForEachMemberButItsSender() throws {
        let (h, t) = try Self.cluster(["alice", "bob", "carol", "dave"])
        let created = try h.runApplied(.createGroup(.with { $0.tokenHash = t["alice"]!; $0.name = "team"; $0.members = ["bob", "carol", "bob", "alice"] }))
        let groupID = try created.outcome.get()
        let (alice, bob, carol, dave) = try (h.userID("alice"), h.userID("bob"), h.userID("carol"), h.userID("dave"))
        guard case let .groupChanged(row, audience)? = created.events.first else { Issue.record("no change event"); return }
        #expect(row.change.kind == .created && row.change.members == ["bob", "carol"] && row.sender == "alice" && row.group == "team")
        #expect(Set(audience) == [alice, bob, carol])

        let sent = try h.runApplied(.sendGroupMessage(.with { $0.tokenHash = t["bob"]!; $0.group = "team"; $0.body = "hello all" }))
        let id = try sent.outcome.get()
        guard case let .groupMessageSent(message, to)? = sent.events.first else { Issue.record("no send event"); return }
        #expect(message.id == id && message.groupID == groupID && message.group == "team" && message.recipient.isEmpty && message.body == "hello all")
        #expect(Set(to) == [alice, carol])
        // Waiting for alice and carol, not for bob (who sent it) nor dave (not a member).
        #expect(try h.state.undelivered(userID: alice, limit: 10).map(\.id) == [id])
        #expect(try h.state.undelivered(userID: carol, limit: 10).map(\.id) == [id])
        #expect(try h.state.undelivered(userID: bob, limit: 10).isEmpty)
        #expect(try h.state.undelivered(userID: dave, limit: 10).isEmpty)
        #expect(try h.state.groups(of: alice) == [GroupSummary(id: groupID, name: "team", memberCount: 3, admin: true, unread: 1)])
        #expect(try h.state.groups(of: bob).map(\.admin) == [false])
        #expect(try h.state.groups(of: dave).isEmpty)
        // Acknowledged per member: alice's delivery leaves carol's waiting.
        #expect(try h.acknowledge(t["alice"]!, [id]).get() == 1)
        #expect(try h.acknowledge(t["alice"]!, [id]).get() == 0)
        #expect(try h.acknowledge(t["dave"]!, [id]).get() == 0)
        #expect(try h.state.undelivered(userID: alice, limit: 10).isEmpty)
        #expect(try h.state.undelivered(userID: carol, limit: 10).map(\.id) == [id])
        // The conversation holds the creation and the message, for members only.
        #expect(try h.state.groupHistory(groupID, limit: 10, newestFirst: false).items.map(\.id) == [groupID, id])
        #expect(try h.state.group(named: "team", member: carol)?.id == groupID)
        #expect(try h.state.group(named: "team", member: dave) == nil)
        #expect(try h.sendToGroup(t["dave"]!, "team", "let me in").rejectionMessage == "dave is in no group named 'team'")
    }

    @Test func onlyAdminsChangeTheGroupAndTheLastAdminLeavingHandsItOn() throws {
        let (h, t) = try Self.cluster(["alice", "bob", "carol", "dave"])
        let groupID = try h.createGroup(t["alice"]!, "team", ["bob"]).get()
        #expect(try h.run(.addGroupMembers(.with { $0.tokenHash = t["bob"]!; $0.group = "team"; $0.members = ["carol"] })).rejectionMessage
            == "only an admin of 'team' adds members; bob is not one")
        #expect(try h.run(.addGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["carol", "bob", "nobody"] })).rejectionMessage
            == "there is no account named 'nobody'")
        #expect(try h.run(.addGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["carol", "bob"] })).get() == 1)
        #expect(try h.run(.addGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["bob"] })).get() == 0)
        #expect(try h.run(.removeGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["alice"] })).rejection == .invalidArgument)
        #expect(try h.run(.removeGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["dave"] })).rejectionMessage
            == "'dave' is not a member of 'team'")
        #expect(try h.run(.renameGroup(.with { $0.tokenHash = t["bob"]!; $0.group = "team"; $0.name = "crew" })).rejection == .permissionDenied)
        #expect(try h.run(.setGroupAdmin(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.member = "alice"; $0.admin = false })).rejectionMessage
            == "'alice' is the only admin of 'team'; make another member admin first")

        // bob joined before carol: when alice, the only admin, leaves, bob becomes admin.
        let left = try h.runApplied(.leaveGroup(.with { $0.tokenHash = t["alice"]!; $0.group = "team" }))
        guard case let .groupChanged(row, audience)? = left.events.first else { Issue.record("no change event"); return }
        #expect(row.change.kind == .left && row.change.newAdmins == ["bob"])
        #expect(audience.contains(try h.userID("alice")))
        #expect(try h.state.members(ofGroup: groupID).map { "\($0.name)\($0.admin ? "*" : "")" } == ["bob*", "carol"])
        #expect(try h.state.groups(of: h.userID("alice")).isEmpty)

        let before = try h.sendToGroup(t["carol"]!, "team", "under the old name").get()
        _ = try h.run(.renameGroup(.with { $0.tokenHash = t["bob"]!; $0.group = "team"; $0.name = "crew" })).get()
        // What waits, and the history, show the group as it is called now.
        #expect(try h.state.undelivered(userID: h.userID("bob"), limit: 10).first { $0.id == before }?.group == "crew")
        #expect(try h.state.group(named: "team", member: h.userID("bob")) == nil)
        #expect(try h.state.group(named: "crew", member: h.userID("bob"))?.id == groupID)
        _ = try h.createGroup(t["dave"]!, "other", []).get()
        #expect(try h.run(.renameGroup(.with { $0.tokenHash = t["bob"]!; $0.group = "crew"; $0.name = "other" })).rejection == .alreadyExists)
        _ = try h.run(.setGroupAdmin(.with { $0.tokenHash = t["bob"]!; $0.group = "crew"; $0.member = "carol"; $0.admin = true })).get()
        let kinds = try h.state.groupHistory(groupID, limit: 20, newestFirst: false).items.filter(\.hasChange).map(\.change.kind)
        #expect(kinds == [.created, .added, .left, .renamed, .madeAdmin])
        // Messages show the name as it is; a change, the name it was made under.
        let rows = try h.state.groupHistory(groupID, limit: 20, newestFirst: false).items
        #expect(rows.filter { !$0.hasChange }.allSatisfy { $0.group == "crew" })
        #expect(rows.filter(\.hasChange).map(\.group) == ["team", "team", "team", "crew", "crew"])
        // For a reader, whether each message of another waits for it.
        let forBob = try h.state.groupHistory(groupID, limit: 20, newestFirst: false, reader: h.userID("bob")).items.filter { !$0.hasChange }
        #expect(forBob.map(\.delivered) == [false])
        _ = try h.acknowledge(t["bob"]!, forBob.map(\.id)).get()
        #expect(try h.state.groupHistory(groupID, limit: 20, newestFirst: false, reader: h.userID("bob")).items.filter { !$0.hasChange }.map(\.delivered) == [true])

        // The last member's leaving takes the group, its conversation and its name.
        let messageID = try h.sendToGroup(t["carol"]!, "crew", "bye").get()
        _ = try h.run(.leaveGroup(.with { $0.tokenHash = t["bob"]!; $0.group = "crew" })).get()
        _ = try h.run(.leaveGroup(.with { $0.tokenHash = t["carol"]!; $0.group = "crew" })).get()
        #expect(try h.state.message(id: messageID) == nil)
        #expect(try h.state.message(id: groupID) == nil)
        #expect(try h.state.groupHistory(groupID, limit: 20).items.isEmpty)
        #expect(try h.createGroup(t["carol"]!, "crew", []).get() > 0)
    }

    @Test func aRemovedMemberStopsWaitingAndSeesNothingAfter() throws {
        let (h, t) = try Self.cluster(["alice", "bob", "carol"])
        _ = try h.createGroup(t["alice"]!, "team", ["bob", "carol"]).get()
        let first = try h.sendToGroup(t["alice"]!, "team", "one").get()
        let direct = try h.send(t["alice"]!, to: "bob", "just you").get()
        let removed = try h.runApplied(.removeGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["bob"] }))
        guard case let .groupChanged(_, audience)? = removed.events.first else { Issue.record("no change event"); return }
        #expect(audience.contains(try h.userID("bob")))
        _ = try h.sendToGroup(t["alice"]!, "team", "two").get()
        let bob = try h.userID("bob")
        #expect(try h.state.undelivered(userID: bob, limit: 10).map(\.id) == [direct])
        #expect(try h.state.undelivered(userID: h.userID("carol"), limit: 10).count == 2)
        #expect(try h.acknowledge(t["bob"]!, [first]).get() == 0)
        #expect(try h.sendToGroup(t["bob"]!, "team", "hey").rejection == .notFound)
        // What bob said while a member stays, and is no longer his to change.
        _ = try h.run(.addGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["bob"] })).get()
        let said = try h.sendToGroup(t["bob"]!, "team", "back").get()
        _ = try h.run(.removeGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.members = ["bob"] })).get()
        #expect(try h.edit(t["bob"]!, said, "rewritten").rejectionMessage == "message \(said) is in a group bob is no longer in")
        #expect(try h.state.message(id: said)?.body == "back")
    }

    @Test func membersDeleteTheirOwnAndAdminsAny() throws {
        let (h, t) = try Self.cluster(["alice", "bob", "carol"])
        _ = try h.createGroup(t["alice"]!, "team", ["bob", "carol"]).get()
        let fromBob = try h.sendToGroup(t["bob"]!, "team", "mine").get()
        let fromCarol = try h.sendToGroup(t["carol"]!, "team", "hers").get()
        #expect(try h.delete(t["bob"]!, [fromCarol]).rejectionMessage
            == "message \(fromCarol) is not bob's to delete: in a group, a member deletes its own messages, an admin any")
        // A stranger is told what a stranger to a direct conversation is, and learns no name.
        _ = try h.createAccount("mallory").get()
        let mallory = try h.login("mallory")
        #expect(try h.delete(mallory, [fromCarol]).rejectionMessage == "message \(fromCarol) is not in a conversation of mallory")
        let deleted = try h.runApplied(.deleteMessages(.with { $0.tokenHash = t["bob"]!; $0.messageIds = [fromBob] }))
        #expect(deleted.events == [.messagesDeleted(ids: [fromBob], participants: ["alice", "bob", "carol"])])
        #expect(try h.delete(t["alice"]!, [fromCarol]).get() == 1)
        for name in ["alice", "bob", "carol"] { #expect(try h.state.undelivered(userID: h.userID(name), limit: 10).isEmpty) }
        #expect(try h.state.message(id: fromCarol) == nil)
        // Editing: the sender only; a change is not a message.
        let again = try h.sendToGroup(t["carol"]!, "team", "typo").get()
        #expect(try h.edit(t["alice"]!, again, "x").rejection == .permissionDenied)
        let edited = try h.runApplied(.editMessage(.with { $0.tokenHash = t["carol"]!; $0.messageID = again; $0.body = "fixed" }))
        guard case let .groupMessageEdited(row, audience)? = edited.events.first else { Issue.record("no edit event"); return }
        #expect(row.body == "fixed" && audience.count == 3)
        // A change is the group's record: neither edited nor deleted.
        let changeID = try #require(try h.state.groupHistory(row.groupID, limit: 50, newestFirst: false).items.first?.id)
        #expect(try h.edit(t["alice"]!, changeID, "x").rejection == .notFound)
        #expect(try h.delete(t["alice"]!, [changeID]).rejection == .notFound)
        #expect(try h.state.groupHistory(row.groupID, limit: 50, newestFirst: false).items.first?.change.kind == .created)
    }

    @Test func aDeletedAccountLeavesItsGroups() throws {
        let (h, t) = try Self.cluster(["alice", "bob", "carol"])
        let aliceID = try h.userID("alice")
        let shared = try h.createGroup(t["alice"]!, "team", ["bob"]).get()
        let other = try h.createGroup(t["alice"]!, "other", ["carol"]).get()
        let alone = try h.createGroup(t["alice"]!, "solo", []).get()
        let said = try h.sendToGroup(t["alice"]!, "team", "hello").get()
        _ = try h.sendToGroup(t["bob"]!, "team", "hi alice").get()
        let applied = try h.runApplied(.deleteAccount(.with { $0.tokenHash = t["alice"]! }))
        let changes = applied.events.compactMap { event -> MessageRow? in if case let .groupChanged(row, _) = event { row } else { nil } }
        #expect(changes.map(\.group) == ["team", "other", "solo"])
        #expect(changes.allSatisfy { $0.change.kind == .left && $0.change.accountDeleted })
        #expect(try h.state.members(ofGroup: shared).map(\.name) == ["bob"])
        #expect(try h.state.members(ofGroup: shared).map(\.admin) == [true])
        #expect(try h.state.groupHistory(alone, limit: 10).items.isEmpty)
        // One entry left two groups that go on: each records its own leave, and names only
        // itself and its own members.
        let teamLeft = try #require(try h.state.groupHistory(shared, limit: 10).items.first)
        let otherLeft = try #require(try h.state.groupHistory(other, limit: 10).items.first)
        #expect(teamLeft.id == otherLeft.id)
        #expect(teamLeft.group == "team" && teamLeft.change.newAdmins == ["bob"])
        #expect(otherLeft.group == "other" && otherLeft.change.newAdmins == ["carol"])
        // What it said stays; nothing waits for it.
        #expect(try h.state.message(id: said)?.sender == "alice")
        #expect(try h.state.unreadCount(userID: aliceID) == 0)
        #expect(try h.state.unreadCount(userID: h.userID("bob")) == 1)
    }

    /// From cluster version 3 on, a deleted account's name and id are remembered: the other
    /// side reads what it wrote; before, nothing is (the apply is as older builds do it).
    @Test func aDeletedAccountsConversationStaysReadableFromVersionThree() throws {
        for version in [UInt32(2), 3] {
            let h = try Harness()
            _ = try h.run(.setClusterVersion(.with { $0.version = version }))
            _ = try h.createAccount("alice").get()
            _ = try h.createAccount("bob").get()
            _ = try h.createAccount("carol").get()
            let (alice, bob) = (try h.login("alice"), try h.login("bob"))
            let said = try h.send(alice, to: "bob", "remember me").get()
            _ = try h.send(bob, to: "alice", "gone with her inbox").get()
            let aliceID = try h.userID("alice"), bobID = try h.userID("bob"), carolID = try h.userID("carol")
            _ = try h.deleteAccount(alice).get()
            let former = try h.state.formerAccount(named: "alice", conversingWith: bobID)
            #expect(former == (version >= 3 ? aliceID : nil), "cluster version \(version)")
            #expect(try h.state.formerAccount(named: "alice", conversingWith: carolID) == nil)
            if let former {
                #expect(try h.state.conversation(between: bobID, and: former, limit: 10).items.map(\.id) == [said])
            }
            // The name is free; a new alice is another account, with no conversation yet.
            _ = try h.createAccount("alice").get()
            #expect(try h.userID("alice") != aliceID)
        }
    }

    /// The tools' rendering of the new tables: a change from its history row, a delivery's
    /// group, a former account's name and id.
    @Test func dumpsDescribeTheGroupTables() throws {
        let (h, t) = try Self.cluster(["alice", "bob"])
        let groupID = try h.createGroup(t["alice"]!, "team", ["bob"]).get()
        let sent = try h.sendToGroup(t["alice"]!, "team", "hi").get()
        let bobID = try h.userID("bob"), aliceID = try h.userID("alice")
        _ = try h.deleteAccount(t["alice"]!).get()
        var lines: [String: [String]] = [:]
        for table in ["group-history", "inbox", "former-users"] {
            try h.state.forEachRow(in: table) { key, value in
                lines[table, default: []].append(ChatState.describeRow(table: table, key: key, value: value))
            }
        }
        #expect(lines["group-history"]?.first?.hasPrefix("\(groupID)/\(groupID) ") == true && lines["group-history"]?.first?.contains("kind: CREATED") == true,
                "\(lines)")
        #expect(lines["inbox"] == ["\(bobID)/\(sent) group \(groupID)"], "\(lines)")
        #expect(lines["former-users"] == ["alice/\(aliceID) "], "\(lines)")
    }

    @Test func limitsOnMembersAndGroups() throws {
        let (h, t) = try Self.cluster(["alice", "bob"])
        let many = (0..<Validation.maxGroupMembers).map { "user\($0)" }
        for name in many { _ = try h.createAccount(name).get() }
        #expect(try h.createGroup(t["alice"]!, "big", many).rejectionMessage == "a group holds at most 1000 members; 1001 were asked for")
        _ = try h.createGroup(t["alice"]!, "big", Array(many.dropLast())).get()
        #expect(try h.run(.addGroupMembers(.with { $0.tokenHash = t["alice"]!; $0.group = "big"; $0.members = ["bob", "user999"] })).rejectionMessage
            == "'big' has 1000 members; adding 2 would pass the limit of 1000")
        #expect(try h.createGroup(t["alice"]!, "way-too-many", Array(repeating: "bob", count: 1_001)).rejection == .invalidArgument)
        for n in 1..<Validation.maxGroupsPerAccount { _ = try h.createGroup(t["bob"]!, "g\(n)", []).get() }
        #expect(try h.createGroup(t["bob"]!, "one-more", []).get() > 0)
        #expect(try h.createGroup(t["bob"]!, "too-many", []).rejectionMessage == "'bob' is in 256 groups, the most an account may be in")
        #expect(try h.createGroup(t["alice"]!, "with-bob", ["bob"]).rejectionMessage == "'bob' is in 256 groups, the most an account may be in")
        #expect(try h.createGroup(t["alice"]!, "bad name", []).rejection == .invalidArgument)
        #expect(try h.createGroup(t["alice"]!, "..", []).rejectionMessage == "the group name '..' needs a letter, a digit, '_' or '-'")
        #expect(try h.createGroup(t["alice"]!, "big", []).rejectionMessage == "there is already a group named 'big'")
    }

    @Test func aRetriedGroupSendIsAppliedOnce() throws {
        let (h, t) = try Self.cluster(["alice", "bob"])
        _ = try h.createGroup(t["alice"]!, "team", ["bob"]).get()
        let send = Command.OneOf_Kind.sendGroupMessage(.with { $0.tokenHash = t["alice"]!; $0.group = "team"; $0.body = "once" })
        let first = try h.run(send, client: "c1", sequence: 7).get()
        let retry = try h.runApplied(send, client: "c1", sequence: 7)
        #expect(retry.duplicate)
        #expect(try retry.outcome.get() == first)
        #expect(try h.state.undelivered(userID: h.userID("bob"), limit: 10).map(\.id) == [first])
    }
}

extension Harness {
    func createGroup(_ token: Data, _ name: String, _ members: [String]) throws -> Result<UInt64, Rejection> {
        try run(.createGroup(.with { $0.tokenHash = token; $0.name = name; $0.members = members }))
    }

    func sendToGroup(_ token: Data, _ group: String, _ body: String) throws -> Result<UInt64, Rejection> {
        try run(.sendGroupMessage(.with { $0.tokenHash = token; $0.group = group; $0.body = body }))
    }
}
