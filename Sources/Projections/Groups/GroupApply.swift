import Foundation
import LMDB

/// Group commands (cluster version 3 on). Each checks everything first and writes after, as
/// every command does, so a refused one leaves no trace.
///
/// A group's conversation is its `group-history` rows, keyed by (group id, log index). A
/// message's row is in `messages`, as a direct one's is; a change (a join, a leave, a rename, an
/// admin) is kept in its history row itself, since one entry may change several groups (an
/// account deleted leaves all of its groups at one index). A message waits in the `inbox` of
/// each member but its sender, as a direct message waits in its recipient's (the inbox row's
/// value is the group's id), so reading N, unread counts, acknowledging and a subscription's
/// catch-up take group messages as they are. Changes are pushed live, never in an inbox, and
/// cannot be edited or deleted: they are the group's record of who was in it.
extension Mutation {
    mutating func createGroup(_ c: CreateGroup, _ events: inout [ChatEvent]) throws -> UInt64 {
        let creator = try session(c.tokenHash)
        try Validation.groupName(c.name)
        try Validation.memberNames(c.members, required: false)
        let g = try tables.group
        let invited = try accounts(c.members).filter { $0.id != creator.id }
        guard invited.count + 1 <= Validation.maxGroupMembers else {
            throw Rejection(.failedPrecondition, "a group holds at most \(Validation.maxGroupMembers) members; \(invited.count + 1) were asked for")
        }
        guard try txn.get(g.names, Array(c.name.utf8)) == nil else {
            throw Rejection(.alreadyExists, "there is already a group named '\(c.name)'")
        }
        for account in [creator] + invited { try checkRoomForAnotherGroup(account) }

        var group = GroupRow()
        group.id = index
        group.name = c.name
        group.createdMs = timestamp
        group.memberCount = UInt32(invited.count + 1)
        group.adminCount = 1
        try putGroup(group)
        try txn.put(g.names, Array(c.name.utf8), index.bigEndianBytes)
        try putMember(group.id, creator, admin: true)
        for account in invited { try putMember(group.id, account, admin: false) }
        try recordChange(in: group, by: creator, .with { $0.kind = .created; $0.members = invited.map(\.name) },
                         audience: [creator.id] + invited.map(\.id), &events)
        return index
    }

    mutating func addGroupMembers(_ c: AddGroupMembers, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        let (found, me) = try membership(c.group, of: user)
        var group = found
        try requireAdmin(me, group, user, "adds members")
        try Validation.memberNames(c.members, required: true)
        var joining: [Account] = []
        for account in try accounts(c.members) where try memberRow(group.id, account.id) == nil { joining.append(account) }
        guard Int(group.memberCount) + joining.count <= Validation.maxGroupMembers else {
            throw Rejection(.failedPrecondition, "'\(group.name)' has \(group.memberCount) members; adding \(joining.count) would pass the limit of \(Validation.maxGroupMembers)")
        }
        for account in joining { try checkRoomForAnotherGroup(account) }
        guard !joining.isEmpty else { return 0 }
        for account in joining { try putMember(group.id, account, admin: false) }
        group.memberCount += UInt32(joining.count)
        try putGroup(group)
        try recordChange(in: group, by: user, .with { $0.kind = .added; $0.members = joining.map(\.name) },
                         audience: try members(of: group.id).map(\.id), &events)
        return UInt64(joining.count)
    }

    mutating func removeGroupMembers(_ c: RemoveGroupMembers, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        let (found, me) = try membership(c.group, of: user)
        var group = found
        try requireAdmin(me, group, user, "removes members")
        try Validation.memberNames(c.members, required: true)
        var leaving: [(account: Account, row: MemberRow)] = []
        for name in Set(c.members).sorted() {
            guard name != user.name else {
                throw Rejection(.invalidArgument, "\(user.name) cannot remove itself from '\(group.name)'; leave the group instead")
            }
            guard let account = try self.user(named: name), let row = try memberRow(group.id, account.id) else {
                throw Rejection(.notFound, "'\(name)' is not a member of '\(group.name)'")
            }
            leaving.append((account, row))
        }
        // Those removed are told too: the group leaves their list.
        let audience = try members(of: group.id).map(\.id)
        for (account, row) in leaving {
            try removeMember(group.id, account)
            if row.admin { group.adminCount -= 1 }
        }
        group.memberCount -= UInt32(leaving.count)
        try putGroup(group)
        try recordChange(in: group, by: user, .with { $0.kind = .removed; $0.members = leaving.map(\.account.name) }, audience: audience, &events)
        return UInt64(leaving.count)
    }

    mutating func leaveGroup(_ c: LeaveGroup, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        let (group, me) = try membership(c.group, of: user)
        try leave(group, me, user, accountDeleted: false, &events)
        return 0
    }

    /// `user` leaves `group`. The last member's leaving deletes the group and its
    /// conversation; the last admin's makes the longest-standing member admin.
    mutating func leave(_ group: GroupRow, _ me: MemberRow, _ user: Account, accountDeleted: Bool, _ events: inout [ChatEvent]) throws {
        var group = group
        let audience = try members(of: group.id).map(\.id)
        try removeMember(group.id, user)
        group.memberCount -= 1
        if me.admin { group.adminCount -= 1 }
        var change = GroupChange.with { $0.kind = .left; $0.accountDeleted = accountDeleted }
        guard group.memberCount > 0 else {
            try deleteGroup(group)
            if reporting { events.append(.groupChanged(changeRow(group, by: user, change), audience: [user.id])) }
            return
        }
        if group.adminCount == 0 {
            let heir = try members(of: group.id).min { a, b in
                a.row.joined != b.row.joined ? a.row.joined < b.row.joined : a.id < b.id
            }!
            var row = heir.row
            row.admin = true
            try txn.put(try tables.group.members, compositeKey(group.id, heir.id), try row.serializedBytes())
            group.adminCount = 1
            change.newAdmins = [row.name]
        }
        try putGroup(group)
        try recordChange(in: group, by: user, change, audience: audience, &events)
    }

    mutating func renameGroup(_ c: RenameGroup, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        let (found, me) = try membership(c.group, of: user)
        var group = found
        try requireAdmin(me, group, user, "renames it")
        try Validation.groupName(c.name)
        guard c.name != group.name else { return 0 }
        let g = try tables.group
        guard try txn.get(g.names, Array(c.name.utf8)) == nil else {
            throw Rejection(.alreadyExists, "there is already a group named '\(c.name)'")
        }
        let previous = group.name
        try txn.delete(g.names, Array(previous.utf8))
        try txn.put(g.names, Array(c.name.utf8), group.id.bigEndianBytes)
        group.name = c.name
        try putGroup(group)
        try recordChange(in: group, by: user, .with { $0.kind = .renamed; $0.previousName = previous },
                         audience: try members(of: group.id).map(\.id), &events)
        return 1
    }

    mutating func setGroupAdmin(_ c: SetGroupAdmin, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        let (found, me) = try membership(c.group, of: user)
        var group = found
        try requireAdmin(me, group, user, "makes admins")
        try Validation.accountName(c.member)
        guard let account = try self.user(named: c.member), var row = try memberRow(group.id, account.id) else {
            throw Rejection(.notFound, "'\(c.member)' is not a member of '\(group.name)'")
        }
        guard row.admin != c.admin else { return 0 }
        if !c.admin {
            guard group.adminCount > 1 else {
                throw Rejection(.failedPrecondition, "'\(account.name)' is the only admin of '\(group.name)'; make another member admin first")
            }
            group.adminCount -= 1
        } else {
            group.adminCount += 1
        }
        row.admin = c.admin
        try txn.put(try tables.group.members, compositeKey(group.id, account.id), try row.serializedBytes())
        try putGroup(group)
        try recordChange(in: group, by: user, .with { $0.kind = c.admin ? .madeAdmin : .noLongerAdmin; $0.members = [account.name] },
                         audience: try members(of: group.id).map(\.id), &events)
        return 1
    }

    /// One message row and history row, and a delivery row in the inbox of every member but
    /// the sender: what a send to a group of n costs the log's appliers, n + 1 puts.
    mutating func sendGroupMessage(_ c: SendGroupMessage, _ events: inout [ChatEvent]) throws -> UInt64 {
        let sender = try session(c.tokenHash)
        let (group, _) = try membership(c.group, of: sender)
        try Validation.messageBody(c.body)
        var message = MessageRow()
        message.id = index
        message.senderID = sender.id
        message.sender = sender.name
        message.groupID = group.id
        message.group = group.name
        message.body = c.body
        message.sentMs = timestamp
        try txn.put(tables.messages, index.bigEndianBytes, try message.serializedBytes())
        try txn.put(try tables.group.history, compositeKey(group.id, index), [])
        var audience: [UInt64] = []
        let delivery = group.id.bigEndianBytes
        for member in try members(of: group.id) where member.id != sender.id {
            try txn.put(tables.inbox, compositeKey(member.id, index), delivery)
            audience.append(member.id)
        }
        if reporting { events.append(.groupMessageSent(message, audience: audience)) }
        return index
    }

    /// Every group `user` is in, as an account being deleted leaves them.
    mutating func leaveEveryGroup(_ user: Account, _ events: inout [ChatEvent]) throws {
        guard let g = tables.groupTables else { return }
        var ids: [UInt64] = []
        try txn.withCursor(g.userGroups) { cursor in
            try cursor.forEach(prefix: user.id.bigEndianBytes) { row in
                if let id = UInt64(bigEndianBytes: row.key, at: 8) { ids.append(id) }
                return true
            }
        }
        for id in ids {
            guard let group = try groupRow(id), let me = try memberRow(id, user.id) else { continue }
            try leave(group, me, user, accountDeleted: true, &events)
        }
    }

    // MARK: Group messages in the commands every conversation shares

    /// Whether `user` may delete group message `message`: its sender while a member, or an
    /// admin of its group. Nil when `user` is not in the group: it is told what a stranger to a
    /// direct conversation is told, and learns nothing of the group.
    func mayDeleteGroupMessage(_ message: MessageRow, _ user: Account) throws -> Bool? {
        guard let member = try memberRow(message.groupID, user.id) else { return nil }
        return member.admin || message.senderID == user.id
    }

    /// The group message as its group is called now: what an edit's event shows.
    func withCurrentName(_ message: MessageRow) throws -> MessageRow {
        var shown = message
        if let group = try groupRow(message.groupID) { shown.group = group.name }
        return shown
    }

    /// Removes a group message: its row, its history row and every member's delivery row.
    /// Returns the names of the group's members, who are told.
    mutating func removeGroupMessage(_ message: MessageRow) throws -> [String] {
        let members = try members(of: message.groupID)
        try txn.delete(tables.messages, message.id.bigEndianBytes)
        try txn.delete(try tables.group.history, compositeKey(message.groupID, message.id))
        for member in members { try txn.delete(tables.inbox, compositeKey(member.id, message.id)) }
        return members.map(\.row.name)
    }

    /// The ids of the members of a group message's group, for its edit's audience.
    func audience(of message: MessageRow) throws -> [UInt64] {
        try members(of: message.groupID).map(\.id)
    }

    // MARK: Helpers

    /// The group named `name` and `user`'s row in it. A group one is not in is answered as one
    /// that does not exist.
    func membership(_ name: String, of user: Account) throws -> (GroupRow, MemberRow) {
        try Validation.groupName(name)
        guard let id = try txn.get(try tables.group.names, Array(name.utf8)).flatMap({ UInt64(bigEndianBytes: $0) }),
              let group = try groupRow(id), let member = try memberRow(id, user.id)
        else {
            throw Rejection(.notFound, "\(user.name) is in no group named '\(name)'")
        }
        return (group, member)
    }

    func requireAdmin(_ member: MemberRow, _ group: GroupRow, _ user: Account, _ doing: String) throws {
        guard member.admin else {
            throw Rejection(.permissionDenied, "only an admin of '\(group.name)' \(doing); \(user.name) is not one")
        }
    }

    func groupRow(_ id: UInt64) throws -> GroupRow? {
        try txn.get(try tables.group.groups, id.bigEndianBytes).map { try GroupRow(serializedBytes: $0) }
    }

    func memberRow(_ group: UInt64, _ user: UInt64) throws -> MemberRow? {
        try txn.get(try tables.group.members, compositeKey(group, user)).map { try MemberRow(serializedBytes: $0) }
    }

    /// A group's members in user-id order.
    func members(of group: UInt64) throws -> [(id: UInt64, row: MemberRow)] {
        var members: [(id: UInt64, row: MemberRow)] = []
        try txn.withCursor(try tables.group.members) { cursor in
            try cursor.forEach(prefix: group.bigEndianBytes) { row in
                if let id = UInt64(bigEndianBytes: row.key, at: 8) { members.append((id, try MemberRow(serializedBytes: row.value))) }
                return true
            }
        }
        return members
    }

    /// The accounts `names` name, each once, in the order first named; NOT_FOUND for a name
    /// no account has.
    func accounts(_ names: [String]) throws -> [Account] {
        var seen = Set<String>()
        var found: [Account] = []
        for name in names where seen.insert(name).inserted {
            guard let account = try user(named: name) else { throw Rejection(.notFound, "there is no account named '\(name)'") }
            found.append(account)
        }
        return found
    }

    func checkRoomForAnotherGroup(_ account: Account) throws {
        let count = try countRows(try tables.group.userGroups, prefix: account.id.bigEndianBytes)
        guard count < Validation.maxGroupsPerAccount else {
            throw Rejection(.failedPrecondition, "'\(account.name)' is in \(count) groups, the most an account may be in")
        }
    }

    mutating func putGroup(_ group: GroupRow) throws {
        try txn.put(try tables.group.groups, group.id.bigEndianBytes, try group.serializedBytes())
    }

    mutating func putMember(_ group: UInt64, _ account: Account, admin: Bool) throws {
        let g = try tables.group
        let row = MemberRow.with {
            $0.name = account.name
            $0.admin = admin
            $0.joined = index
        }
        try txn.put(g.members, compositeKey(group, account.id), try row.serializedBytes())
        try txn.put(g.userGroups, compositeKey(account.id, group), [])
    }

    /// Takes `account` out of `group`, with what still waits for it there: a former member
    /// reads nothing of the group after it left. Its inbox rows are walked, not decoded: a
    /// group delivery's value names its group.
    mutating func removeMember(_ group: UInt64, _ account: Account) throws {
        let g = try tables.group
        try txn.delete(g.members, compositeKey(group, account.id))
        try txn.delete(g.userGroups, compositeKey(account.id, group))
        var waiting: [UInt64] = []
        let delivery = group.bigEndianBytes
        try txn.withCursor(tables.inbox) { cursor in
            try cursor.forEach(prefix: account.id.bigEndianBytes) { row in
                if row.value == delivery, let id = UInt64(bigEndianBytes: row.key, at: 8) { waiting.append(id) }
                return true
            }
        }
        for id in waiting { try txn.delete(tables.inbox, compositeKey(account.id, id)) }
    }

    /// A group with nobody left goes, with its conversation (its changes go with their
    /// history rows; its messages' rows are in `messages`).
    mutating func deleteGroup(_ group: GroupRow) throws {
        let g = try tables.group
        for key in try removeRows(g.history, prefix: group.id.bigEndianBytes, { Array($0.dropFirst(8)) }) {
            _ = try txn.delete(tables.messages, key)
        }
        try txn.delete(g.names, Array(group.name.utf8))
        try txn.delete(g.groups, group.id.bigEndianBytes)
    }

    func changeRow(_ group: GroupRow, by actor: Account, _ change: GroupChange) -> MessageRow {
        var row = MessageRow()
        row.id = index
        row.senderID = actor.id
        row.sender = actor.name
        row.groupID = group.id
        row.group = group.name
        row.sentMs = timestamp
        row.change = change
        return row
    }

    /// Writes a change into the group's conversation (in its history row) and tells
    /// `audience`.
    mutating func recordChange(in group: GroupRow, by actor: Account, _ change: GroupChange, audience: [UInt64], _ events: inout [ChatEvent]) throws {
        let row = changeRow(group, by: actor, change)
        try txn.put(try tables.group.history, compositeKey(group.id, index), try row.serializedBytes())
        if reporting { events.append(.groupChanged(row, audience: audience)) }
    }
}
