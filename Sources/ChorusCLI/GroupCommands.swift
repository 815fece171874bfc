import ArgumentParser
import Client
import Foundation

/// `chorus group …`: group conversations. A group is named with or without its `#`; `chorus
/// send '#team' …` and `chorus history '#team'` talk in one.
struct Group: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Group conversations: create, list, members, add, remove, leave, rename, admin.",
        discussion: "Send to a group with `chorus send '#NAME' TEXT`; read its conversation with `chorus history '#NAME'`.",
        subcommands: [Create.self, List.self, Members.self, Add.self, Remove.self, Leave.self, Rename.self, Admin.self]
    )

    /// A group's name as typed, without the `#` that marks it in `send` and `history`.
    static func name(_ typed: String) -> String {
        typed.hasPrefix("#") ? String(typed.dropFirst()) : typed
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group with you as its admin, and its first members.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group's name.") var name: String
        @Argument(help: "Its first members, besides you.") var members: [String] = []

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                let group = Group.name(name)
                let id = try await client.createGroup(token: session.token, name: group, members: members)
                out.emit("created #\(group) with \(members.count + 1) members", ["group": group, "id": id, "members": [session.name] + members] as [String: Any])
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Your groups, with unread messages in each.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                let groups = try await client.groups(token: session.token)
                let human = groups.map { "#\($0.name)  \($0.memberCount) members\($0.admin ? ", admin" : "")\($0.unreadCount > 0 ? ", \($0.unreadCount) unread" : "")" }
                out.emit(groups.isEmpty ? "you are in no group" : human.joined(separator: "\n"),
                         ["groups": groups.map { ["name": $0.name, "id": $0.id, "members": $0.memberCount, "admin": $0.admin, "unread": $0.unreadCount] as [String: Any] }])
            }
        }
    }

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A group's members: ● online, ★ admin.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                let members = try await client.groupMembers(token: session.token, group: Group.name(group))
                out.emit(members.map { "\($0.online ? "●" : "○") \($0.name)\($0.admin ? " ★" : "")" }.joined(separator: "\n"),
                         ["members": members.map { ["name": $0.name, "admin": $0.admin, "online": $0.online] as [String: Any] }])
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add accounts to a group (admins).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String
        @Argument(help: "Accounts to add.") var members: [String]

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                let added = try await client.addGroupMembers(token: session.token, group: Group.name(group), members: members)
                out.emit("added \(added) to #\(Group.name(group))", ["added": added])
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove members from a group (admins).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String
        @Argument(help: "Members to remove.") var members: [String]

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                let removed = try await client.removeGroupMembers(token: session.token, group: Group.name(group), members: members)
                out.emit("removed \(removed) from #\(Group.name(group))", ["removed": removed])
            }
        }
    }

    struct Leave: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Leave a group (the last member's leaving deletes it).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                try await client.leaveGroup(token: session.token, group: Group.name(group))
                out.emit("left #\(Group.name(group))", ["left": Group.name(group)])
            }
        }
    }

    struct Rename: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rename a group (admins).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String
        @Argument(help: "Its new name.") var name: String

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                try await client.renameGroup(token: session.token, group: Group.name(group), to: Group.name(name))
                out.emit("#\(Group.name(group)) is now #\(Group.name(name))", ["group": Group.name(name)])
            }
        }
    }

    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a member an admin (admins), or with --revoke no longer one.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The group.") var group: String
        @Argument(help: "The member.") var member: String
        @Flag(help: "Take the member's admin rights away instead.") var revoke = false

        func run() async throws {
            try await options.run { client, out in
                let session = try SessionFile.load()
                try await client.setGroupAdmin(token: session.token, group: Group.name(group), member: member, admin: !revoke)
                out.emit(revoke ? "\(member) is no longer an admin of #\(Group.name(group))" : "\(member) is an admin of #\(Group.name(group))",
                         ["member": member, "admin": !revoke] as [String: Any])
            }
        }
    }
}
