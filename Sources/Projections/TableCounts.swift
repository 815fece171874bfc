import LMDB

/// How much the projections hold, for metrics: read in one snapshot transaction, row counts
/// from LMDB's statistics (constant time) except online users, which walks the online table
/// (one row per open subscription, so as large as the live connections).
public struct TableCounts: Sendable, Equatable {
    public var users: Int
    public var messages: Int
    /// Messages not yet delivered to their recipient, all users together.
    public var undelivered: Int
    public var onlineUsers: Int
    public var subscriptions: Int
}

extension ChatState {
    public func counts() throws -> TableCounts {
        try environment.read { txn in
            var onlineUsers = 0
            var previous: [UInt8]?
            try txn.withCursor(tables.online) { cursor in
                var row = try cursor.first()
                while let current = row {
                    let user = Array(current.key.prefix(8))
                    if user != previous { onlineUsers += 1 }
                    previous = user
                    row = try cursor.next()
                }
            }
            return TableCounts(users: try txn.count(tables.users), messages: try txn.count(tables.messages), undelivered: try txn.count(tables.inbox),
                               onlineUsers: onlineUsers, subscriptions: try txn.count(tables.online))
        }
    }
}
