import LMDB
import Replica

/// The chat projections of one node: users, messages, sessions, online clients and the
/// exactly-once table, all in one LMDB environment, all derived from the Raft log.
///
/// The environment does not fsync on each apply: it can always be rebuilt by replaying the
/// log. `sync()` makes it durable, which must happen before the log prefix it covers is
/// discarded.
public final class ChatState: Sendable {
    public let environment: Environment
    let tables: Tables
    /// What this node's build applies: an entry beyond it stops the node (`UnknownEntry`).
    public let build: BuildVersions
    /// The format version the projections carried when opened: nil when they predate format
    /// versions (they were stamped with the current one, their layout being the same).
    public let openedFormat: UInt32?

    /// Opens (or creates) the projections in `directory`. `writeMap` (see
    /// `Environment.Options`) suits a node's many small applies; a rebuild's few huge
    /// transactions write faster through pwrite(2).
    ///
    /// Throws `NewerFormat` for projections a newer build wrote.
    public init(directory: String, readOnly: Bool = false, writeMap: Bool = true, map: MapLimits = .standard, build: BuildVersions = .current) throws {
        environment = try Environment(path: directory, options: .init(mapSize: map.initial, maxMapSize: map.maximum, maxDatabases: 32, skipSync: true, readOnly: readOnly, writeMap: writeMap))
        tables = try Tables(environment.openDatabases(Tables.names, optional: Set(Tables.versionThreeNames)))
        self.build = build
        let tables = tables
        let found = try environment.read { txn in try txn.get(tables.meta, Tables.formatKey).flatMap { UInt32(bigEndianBytes: $0) } }
        if let found, found > FormatVersion.projections {
            throw NewerFormat(what: "the projections", path: directory, found: found, known: FormatVersion.projections)
        }
        openedFormat = found
        if found != FormatVersion.projections, !readOnly {
            try environment.write { txn in try txn.put(tables.meta, Tables.formatKey, FormatVersion.projections.bigEndianBytes) }
        }
    }

    /// The cluster version as of the last applied entry: 1 until a `SetClusterVersion` raised it.
    public func clusterVersion() throws -> UInt32 {
        try environment.read { txn in try tables.clusterVersion(txn) }
    }

    /// The index of the last log entry reflected in the tables.
    public func lastApplied() throws -> UInt64 {
        try environment.read { txn in try tables.lastApplied(txn) }
    }

    /// Where the tables stand in the log: the last applied index, its term, and the latest
    /// membership configuration applied (empty until one is). What a snapshot of them records.
    public func position() throws -> AppliedPosition {
        try environment.read { txn in
            AppliedPosition(
                index: try tables.lastApplied(txn),
                term: try txn.get(tables.meta, Tables.appliedTermKey).flatMap { UInt64(bigEndianBytes: $0) } ?? 0,
                configuration: try txn.get(tables.meta, Tables.configurationKey) ?? []
            )
        }
    }

    /// Replaces the membership the tables record. Only for seeding a new cluster from a copy
    /// of another's projections (restore, recovery): the copy then says who the new members
    /// are, as a snapshot of it must. Never on a running node, where only the log changes it.
    public func seed(configuration: [UInt8]) throws {
        try environment.write { txn in try txn.put(tables.meta, Tables.configurationKey, configuration) }
    }

    /// The log's clock as of the last applied entry (see `SessionLifetime`).
    public func logClock() throws -> Int64 {
        try environment.read { txn in try tables.clock(txn) }
    }

    /// Flushes the projections to disk.
    public func sync() throws {
        try environment.sync()
    }
}

/// How large the projections' memory map starts and how far it may grow. With `writeMap` the
/// data file is as large as the map (sparse), so a small start keeps `ls`, `cp` and `du
/// --apparent-size` unsurprised; the map doubles whenever a write fills it.
public struct MapLimits: Sendable, Equatable {
    public var initial: Int
    public var maximum: Int

    public init(initial: Int, maximum: Int) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    public static let standard = MapLimits(initial: 64 << 20, maximum: 1 << 40)
}

/// The named databases, in the canonical order the digest walks them.
///
/// A class: every command's apply passes the tables along, and a struct of nineteen handles
/// (each carrying its name) would be retained and released field by field on every copy.
final class Tables: Sendable {
    static let names = [
        "meta", "users", "messages", "inbox", "mailbox", "conversations",
        "sessions", "user-sessions", "subscriptions", "online", "clients", "results", "session-deadlines", "client-idle",
    ] + versionThreeNames

    /// Cluster version 3's tables: groups, and the accounts deleted since (so that their
    /// conversations stay readable). Empty until used, and left out of the digest while empty,
    /// so a log that never used them digests as the builds before them did.
    static let groupNames = ["groups", "group-names", "group-members", "user-groups", "group-history"]
    static let versionThreeNames = groupNames + ["former-users"]

    let meta, users, messages, inbox, mailbox, conversations: Database
    let sessions, userSessions, subscriptions, online, clients, results, sessionDeadlines, clientIdle: Database
    /// Nil only in projections opened read-only that an older build wrote (see `GroupTables`).
    let groupTables: GroupTables?
    /// Accounts deleted from cluster version 3 on, by (name length, name, user id); nil as
    /// `groupTables` may be.
    let formerUsers: Database?
    /// The tables the file has, in canonical order.
    let all: [Database]

    init(_ handles: [Database?]) {
        let required = handles.prefix(14).map { $0! }
        (meta, users, messages, inbox, mailbox, conversations) = (required[0], required[1], required[2], required[3], required[4], required[5])
        (sessions, userSessions, subscriptions, online, clients, results) = (required[6], required[7], required[8], required[9], required[10], required[11])
        (sessionDeadlines, clientIdle) = (required[12], required[13])
        let grouped = handles[14..<19]
        groupTables = grouped.allSatisfy { $0 != nil } ? GroupTables(grouped.map { $0! }) : nil
        formerUsers = handles[19]
        all = handles.compactMap { $0 }
    }

    /// The group tables, which a writable file always has.
    var group: GroupTables {
        get throws {
            guard let groupTables else { throw NoGroupTables() }
            return groupTables
        }
    }

    /// A `former-users` key: the name's length, the name, the id (newest last).
    static func formerUserKey(_ name: String, _ id: UInt64) -> [UInt8] {
        let bytes = Array(name.utf8)
        return [UInt8(truncatingIfNeeded: bytes.count)] + bytes + id.bigEndianBytes
    }

    static let lastAppliedKey = Array("last-applied".utf8)
    static let appliedTermKey = Array("applied-term".utf8)
    static let configurationKey = Array("configuration".utf8)
    static let clusterVersionKey = Array("cluster-version".utf8)
    /// The layout of these tables (`FormatVersion.projections`). It describes the file, not
    /// the state: the digest leaves it out.
    static let formatKey = Array("format".utf8)

    func clusterVersion(_ txn: Transaction) throws -> UInt32 {
        try txn.get(meta, Self.clusterVersionKey).flatMap { UInt32(bigEndianBytes: $0) } ?? 1
    }

    /// Whether a subscription of `userID` is attached (an `online` row under its id).
    func isOnline(_ userID: UInt64, _ txn: Transaction) throws -> Bool {
        try txn.withCursor(online) { cursor in
            try cursor.seek(atOrAfter: userID.bigEndianBytes).map { $0.key.starts(with: userID.bigEndianBytes) } ?? false
        }
    }

    func lastApplied(_ txn: Transaction) throws -> UInt64 {
        try txn.get(meta, Self.lastAppliedKey).flatMap { UInt64(bigEndianBytes: $0) } ?? 0
    }
}


/// Cluster version 3's tables: groups by id; group ids by name; members by (group id, user
/// id); (user id, group id) for each membership; a group's messages and changes by (group id,
/// message id).
struct GroupTables: Sendable {
    let groups, names, members, userGroups, history: Database

    init(_ handles: [Database]) {
        (groups, names, members, userGroups, history) = (handles[0], handles[1], handles[2], handles[3], handles[4])
    }
}

/// Projections an older build wrote, opened read-only, have no group tables: they hold no
/// group either.
struct NoGroupTables: Error, CustomStringConvertible {
    var description: String { "these projections predate groups (an older build wrote them) and are open read-only" }
}
