import LogStore

/// The chat projections of one node: users, messages, sessions, online clients and the
/// exactly-once table, all in one LMDB environment, all derived from the Raft log.
///
/// The environment does not fsync on each apply: it can always be rebuilt by replaying the
/// log. `sync()` makes it durable, which must happen before the log prefix it covers is
/// discarded.
public final class ChatState: Sendable {
    public let environment: Environment
    let tables: Tables

    /// Opens (or creates) the projections in `directory`.
    public init(directory: String, readOnly: Bool = false) throws {
        environment = try Environment(path: directory, options: .init(maxDatabases: 16, skipSync: true, readOnly: readOnly))
        tables = try Tables(environment.openDatabases(Tables.names))
    }

    /// The index of the last log entry reflected in the tables.
    public func lastApplied() throws -> UInt64 {
        try environment.read { txn in try tables.lastApplied(txn) }
    }

    /// Flushes the projections to disk.
    public func sync() throws {
        try environment.sync()
    }
}

/// The named databases, in the canonical order the digest walks them.
struct Tables: Sendable {
    static let names = [
        "meta", "users", "messages", "inbox", "mailbox", "conversations",
        "sessions", "user-sessions", "subscriptions", "online", "clients",
    ]

    let meta, users, messages, inbox, mailbox, conversations: Database
    let sessions, userSessions, subscriptions, online, clients: Database
    let all: [Database]

    init(_ handles: [Database]) {
        (meta, users, messages, inbox, mailbox, conversations) = (handles[0], handles[1], handles[2], handles[3], handles[4], handles[5])
        (sessions, userSessions, subscriptions, online, clients) = (handles[6], handles[7], handles[8], handles[9], handles[10])
        all = handles
    }

    static let lastAppliedKey = Array("last-applied".utf8)

    func lastApplied(_ txn: Transaction) throws -> UInt64 {
        try txn.get(meta, Self.lastAppliedKey).flatMap { UInt64(bigEndianBytes: $0) } ?? 0
    }
}
