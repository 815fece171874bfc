import LMDB

/// One of a user's groups, as its list shows it.
public struct GroupSummary: Sendable, Equatable {
    public var id: UInt64
    public var name: String
    public var memberCount: UInt32
    /// The user is an admin of it.
    public var admin: Bool
    /// The user's undelivered messages in it.
    public var unread: UInt64
}

/// One member of a group.
public struct GroupMemberSummary: Sendable, Equatable {
    public var name: String
    public var admin: Bool
    public var online: Bool
}

/// Group reads, each in one read transaction. A group is found by name only for its members:
/// to anyone else it does not exist.
extension ChatState {
    /// The groups `userID` is in, by name, with its unread count in each.
    public func groups(of userID: UInt64) throws -> [GroupSummary] {
        guard let g = tables.groupTables else { return [] }
        return try environment.read { txn in
            // A group delivery's inbox value is its group's id (a direct one's is empty).
            var unread: [UInt64: UInt64] = [:]
            try txn.withCursor(tables.inbox) { cursor in
                try cursor.forEach(prefix: userID.bigEndianBytes) { row in
                    if let group = UInt64(bigEndianBytes: row.value) { unread[group, default: 0] += 1 }
                    return true
                }
            }
            var groups: [GroupSummary] = []
            try txn.withCursor(g.userGroups) { cursor in
                try cursor.forEach(prefix: userID.bigEndianBytes) { row in
                    guard let id = UInt64(bigEndianBytes: row.key, at: 8),
                          let group = try txn.get(g.groups, id.bigEndianBytes).map({ try GroupRow(serializedBytes: $0) }),
                          let member = try txn.get(g.members, compositeKey(id, userID)).map({ try MemberRow(serializedBytes: $0) })
                    else { return true }
                    groups.append(GroupSummary(id: id, name: group.name, memberCount: group.memberCount, admin: member.admin, unread: unread[id] ?? 0))
                    return true
                }
            }
            return groups.sorted { $0.name < $1.name }
        }
    }

    /// The group named `name`, if `userID` is a member of it.
    public func group(named name: String, member userID: UInt64) throws -> GroupRow? {
        try Validation.groupName(name)
        guard let g = tables.groupTables else { return nil }
        return try environment.read { txn in
            guard let id = try txn.get(g.names, Array(name.utf8)).flatMap({ UInt64(bigEndianBytes: $0) }),
                  try txn.get(g.members, compositeKey(id, userID)) != nil
            else { return nil }
            return try txn.get(g.groups, id.bigEndianBytes).map { try GroupRow(serializedBytes: $0) }
        }
    }

    /// The members of group `id`, by name, each with whether a subscription of it is attached.
    public func members(ofGroup id: UInt64) throws -> [GroupMemberSummary] {
        guard let g = tables.groupTables else { return [] }
        return try environment.read { txn in
            var members: [GroupMemberSummary] = []
            try txn.withCursor(g.members) { cursor in
                try cursor.forEach(prefix: id.bigEndianBytes) { row in
                    guard let userID = UInt64(bigEndianBytes: row.key, at: 8) else { return true }
                    let member = try MemberRow(serializedBytes: row.value)
                    members.append(GroupMemberSummary(name: member.name, admin: member.admin, online: try tables.isOnline(userID, txn)))
                    return true
                }
            }
            return members.sorted { $0.name < $1.name }
        }
    }

    /// A group's conversation, messages and changes, `limit` at a time, as `conversation`
    /// pages a direct one. With a `reader`, each message of another member says whether it was
    /// delivered to that reader (nothing waits for it), so a client acknowledges only what does.
    public func groupHistory(_ id: UInt64, limit: Int, pageToken: String? = nil, newestFirst: Bool = true, reader: UInt64? = nil) throws -> Page<MessageRow> {
        guard let g = tables.groupTables else {
            try Validation.pageSize(limit)
            return Page(items: [], nextPageToken: nil)
        }
        var page = try page(of: g.history, under: id.bigEndianBytes, limit: limit, pageToken: pageToken, newestFirst: newestFirst)
        if let reader {
            try environment.read { txn in
                for i in page.items.indices where !page.items[i].hasChange && page.items[i].senderID != reader {
                    page.items[i].delivered = try txn.get(tables.inbox, compositeKey(reader, page.items[i].id)) == nil
                }
            }
        }
        return page
    }
}
