import LMDB

/// One row of an account listing.
public struct AccountSummary: Sendable, Equatable {
    public var name: String
    public var online: Bool
}

/// A page of results and the token for the next one (nil on the last page).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextPageToken: String?
}

/// Reads. Each runs in its own read transaction, a consistent snapshot that never blocks
/// the applier.
extension ChatState {
    public func user(named name: String) throws -> UserRow? {
        try environment.read { txn in
            try txn.get(tables.users, Array(name.utf8)).map { try UserRow(serializedBytes: $0) }
        }
    }

    public func userExists(_ name: String) throws -> Bool {
        try user(named: name) != nil
    }

    /// The account if `password` is its password, else nil.
    public func checkCredentials(name: String, password: String) throws -> UserRow? {
        guard let user = try user(named: name) else { return nil }
        guard let hash = Credentials.hashPassword(password, salt: Array(user.salt), iterations: user.iterations) else { return nil }
        return Credentials.constantTimeEqual(hash, Array(user.passwordHash)) ? user : nil
    }

    /// The live session for a token hash (nil when logged out, unknown, or its account is gone).
    public func session(tokenHash: [UInt8]) throws -> SessionRow? {
        try environment.read { txn in
            guard let bytes = try txn.get(tables.sessions, tokenHash) else { return nil }
            let session = try SessionRow(serializedBytes: bytes)
            guard let user = try txn.get(tables.users, Array(session.name.utf8)).map({ try UserRow(serializedBytes: $0) }),
                  user.id == session.userID
            else { return nil }
            return session
        }
    }

    /// Accounts whose names match `pattern`, in name order, `pageSize` at a time. The page
    /// token is the last name of the previous page.
    public func accounts(matching pattern: String, pageSize: Int, pageToken: String? = nil) throws -> Page<AccountSummary> {
        try Validation.pattern(pattern)
        try Validation.pageSize(pageSize)
        if let pageToken { try Validation.accountPageToken(pageToken) }
        let glob = Glob(pattern)
        let prefix = glob.literalPrefix
        return try environment.read { txn in
            try txn.withCursor(tables.users) { cursor in
                var items: [AccountSummary] = []
                var more = false
                var start = prefix
                if let pageToken, !Array(pageToken.utf8).lexicographicallyPrecedes(prefix) {
                    start = Array(pageToken.utf8) + [0]
                }
                try cursor.forEach(prefix: prefix, from: start) { row in
                    guard glob.matches(row.key) else { return true }
                    if items.count == pageSize { more = true; return false }
                    let user = try UserRow(serializedBytes: row.value)
                    items.append(AccountSummary(name: user.name, online: try tables.isOnline(user.id, txn)))
                    return true
                }
                return Page(items: items, nextPageToken: more ? items.last?.name : nil)
            }
        }
    }

    /// Whether a subscription of `name` is attached.
    public func isOnline(_ name: String) throws -> Bool {
        guard let user = try user(named: name) else { return false }
        return try environment.read { txn in try tables.isOnline(user.id, txn) }
    }

    public func unreadCount(userID: UInt64) throws -> UInt64 {
        try environment.read { txn in try Self.count(tables.inbox, prefix: userID.bigEndianBytes, txn) }
    }

    /// The user's undelivered messages, oldest first, `limit` at a time: those after message
    /// `after` (0: from the first).
    public func undelivered(userID: UInt64, after: UInt64 = 0, limit: Int) throws -> [MessageRow] {
        try Validation.pageSize(limit)
        return try environment.read { txn in try Self.undelivered(userID: userID, after: after, limit: limit, txn, tables) }
    }

    /// The oldest `limit` undelivered messages and how many wait in all, read in one
    /// transaction: the count never falls below the page, whatever is acknowledged or deleted
    /// meanwhile.
    public func undeliveredWithCount(userID: UInt64, limit: Int) throws -> (messages: [MessageRow], unreadCount: UInt64) {
        try Validation.pageSize(limit)
        return try environment.read { txn in
            let messages = try Self.undelivered(userID: userID, after: 0, limit: limit, txn, tables)
            return (messages, try Self.count(tables.inbox, prefix: userID.bigEndianBytes, txn))
        }
    }

    static func undelivered(userID: UInt64, after: UInt64, limit: Int, _ txn: Transaction, _ tables: Tables) throws -> [MessageRow] {
        guard after < UInt64.max else { return [] }
        var ids: [UInt64] = []
        try txn.withCursor(tables.inbox) { cursor in
            try cursor.forEach(prefix: userID.bigEndianBytes, from: compositeKey(userID, after + 1)) { row in
                if let id = UInt64(bigEndianBytes: row.key, at: 8) { ids.append(id) }
                return ids.count < limit
            }
        }
        return try Self.rows(ids, txn, tables).rows
    }

    static func count(_ database: Database, prefix: [UInt8], _ txn: Transaction) throws -> UInt64 {
        try txn.withCursor(database) { cursor in
            var count: UInt64 = 0
            try cursor.forEach(prefix: prefix) { _ in count += 1; return true }
            return count
        }
    }

    /// The messages `ids`, in order, until they pass `Validation.maxPageBytes` (at least one):
    /// a page of a thousand 64 KiB bodies would be a 64 MiB answer. `complete` says whether all
    /// of them fit.
    static func rows(_ ids: [UInt64], _ txn: Transaction, _ tables: Tables) throws -> (rows: [MessageRow], complete: Bool) {
        try rows(ids.map { ($0, []) }, txn, tables)
    }

    /// `rows(_:)` for index entries that may carry their row themselves (a group's changes
    /// live in its history: several may come from one entry). A group message shows its group
    /// under the name it has now, the one its members know it by; a change keeps the name it
    /// was made under (a rename's line says what the group became then).
    static func rows(_ entries: [(id: UInt64, inline: [UInt8])], _ txn: Transaction, _ tables: Tables) throws -> (rows: [MessageRow], complete: Bool) {
        var rows: [MessageRow] = []
        var bytes = 0
        var names: [UInt64: String] = [:]
        for (id, inline) in entries {
            guard let stored = inline.isEmpty ? try txn.get(tables.messages, id.bigEndianBytes) : inline else { continue }
            bytes += stored.count
            if !rows.isEmpty && bytes > Validation.maxPageBytes { return (rows, false) }
            var row = try MessageRow(serializedBytes: stored)
            if row.groupID != 0, !row.hasChange, let groups = tables.groupTables?.groups {
                let name = try names[row.groupID] ?? txn.get(groups, row.groupID.bigEndianBytes).map { try GroupRow(serializedBytes: $0).name } ?? row.group
                names[row.groupID] = name
                row.group = name
            }
            rows.append(row)
        }
        return (rows, true)
    }

    /// Messages between two users, `limit` at a time. Newest first by default; the page token
    /// is the last message id returned.
    public func conversation(between a: UInt64, and b: UInt64, limit: Int, pageToken: String? = nil, newestFirst: Bool = true) throws -> Page<MessageRow> {
        try page(of: tables.conversations, under: compositeKey(min(a, b), max(a, b)), limit: limit, pageToken: pageToken, newestFirst: newestFirst)
    }

    /// The messages an index lists under `prefix` (keys: the prefix, then the message id),
    /// `limit` at a time, as `conversation` pages them.
    func page(of index: Database, under prefix: [UInt8], limit: Int, pageToken: String?, newestFirst: Bool) throws -> Page<MessageRow> {
        try Validation.pageSize(limit)
        let cursorID = try pageToken.map(Validation.messagePageToken)
        return try environment.read { txn in
            try txn.withCursor(index) { cursor in
                var ids: [(id: UInt64, inline: [UInt8])] = []
                var more = false
                func take(_ row: Cursor.Row?) -> Bool {
                    guard let row, row.key.starts(with: prefix), let id = UInt64(bigEndianBytes: row.key, at: prefix.count) else { return false }
                    if ids.count == limit { more = true; return false }
                    ids.append((id, row.value))
                    return true
                }
                if newestFirst {
                    var row: Cursor.Row?
                    if let cursorID {
                        row = try cursor.seek(atOrAfter: prefix + cursorID.bigEndianBytes)
                        row = row == nil ? try cursor.last() : try cursor.previous()
                    } else {
                        row = try cursor.seek(atOrAfter: prefix + UInt64.max.bigEndianBytes)
                        row = row == nil ? try cursor.last() : (row!.key.starts(with: prefix) ? row : try cursor.previous())
                    }
                    while take(row) { row = try cursor.previous() }
                } else {
                    var row = try cursor.seek(atOrAfter: prefix + (cursorID.map { $0 + 1 } ?? 0).bigEndianBytes)
                    while take(row) { row = try cursor.next() }
                }
                let (messages, complete) = try Self.rows(ids, txn, tables)
                more = more || !complete
                return Page(items: messages, nextPageToken: more ? messages.last.map { String($0.id) } : nil)
            }
        }
    }

    /// The account that last had `name` and was deleted (from cluster version 3 on), if it
    /// and `userID` wrote to each other: the other side of a conversation that stays readable.
    public func formerAccount(named name: String, conversingWith userID: UInt64) throws -> UInt64? {
        try Validation.accountName(name)
        guard let former = tables.formerUsers else { return nil }
        let prefix = Array(Tables.formerUserKey(name, 0).dropLast(8))
        return try environment.read { txn in
            var ids: [UInt64] = []
            try txn.withCursor(former) { cursor in
                try cursor.forEach(prefix: prefix) { row in
                    if let id = UInt64(bigEndianBytes: row.key, at: prefix.count) { ids.append(id) }
                    return true
                }
            }
            for id in ids.reversed() {
                let conversation = compositeKey(min(id, userID), max(id, userID))
                let spoke = try txn.withCursor(tables.conversations) { cursor in
                    try cursor.seek(atOrAfter: conversation).map { $0.key.starts(with: conversation) } ?? false
                }
                if spoke { return id }
            }
            return nil
        }
    }

    public func message(id: UInt64) throws -> MessageRow? {
        try environment.read { txn in
            try txn.get(tables.messages, id.bigEndianBytes).map { try MessageRow(serializedBytes: $0) }
        }
    }

    /// What the cluster keeps of a client's results: the lowest sequence it still knows, and
    /// how many results it holds (see `ExactlyOnce`).
    public struct ClientWindow: Sendable, Equatable {
        public var floor: UInt64
        public var kept: UInt32
    }

    public func clientWindow(clientID: String) throws -> ClientWindow? {
        try environment.read { txn in
            try txn.get(tables.clients, Array(clientID.utf8)).map { bytes in
                let row = try ClientRow(serializedBytes: bytes)
                return ClientWindow(floor: row.floor, kept: row.kept)
            }
        }
    }

    /// The outcome recorded for a client's latest request, if any.
    public func clientOutcome(clientID: String) throws -> (sequence: UInt64, outcome: Result<UInt64, Rejection>)? {
        try Validation.requestID(clientID: clientID, sequence: 1)
        return try environment.read { txn in
            try txn.get(tables.clients, Array(clientID.utf8)).map { bytes in
                let row = try ClientRow(serializedBytes: bytes)
                return (row.sequence, row.outcome.result)
            }
        }
    }

    /// The outcome the log recorded for request `sequence` of `clientID`, if it still keeps
    /// it (`ExactlyOnce`): what a retry of a committed request is answered with, whatever
    /// has happened to its session since.
    public func recordedOutcome(clientID: String, sequence: UInt64) throws -> Result<UInt64, Rejection>? {
        guard !clientID.isEmpty, clientID.utf8.count <= Validation.maxClientIDBytes else { return nil }
        return try environment.read { txn in
            guard let bytes = try txn.get(tables.clients, Array(clientID.utf8)) else { return nil }
            let row = try ClientRow(serializedBytes: bytes)
            if sequence == row.sequence { return row.outcome.result }
            guard sequence < row.sequence, sequence >= row.floor,
                  let stored = try txn.get(tables.results, ExactlyOnce.resultKey(clientID, sequence)) else { return nil }
            return try Outcome(serializedBytes: stored).result
        }
    }
}
