import Foundation
import LMDB

/// What one apply transaction has already read, and the writes it gathers to make at once.
///
/// Sends dominate a chat log. Each needs its sender's session and user, its recipient's user
/// and its client's exactly-once row, and adds three index rows at scattered keys. Reading the
/// rows once per batch, writing each client's row once, and writing the index rows in key
/// order through one cursor per table is most of what makes replay fast.
///
/// Only sends read from the caches and defer their message and index rows. Every other
/// command calls `settle` before and `forgetReads` after, so it sees the tables exactly as a
/// command-at-a-time apply would.
final class ApplyBatch {
    /// Who each session token acts as, and its row (for when it ends).
    private var sessions: [TokenKey: (account: Account, row: SessionRow)] = [:]
    /// The log's clock: the largest entry timestamp applied (see `SessionLifetime`).
    var clock: Int64 = 0
    /// The cluster version as the batch goes (`SetClusterVersion` raises it).
    var clusterVersion: UInt32 = 1
    /// User ids by name.
    private var users: [String: UInt64] = [:]
    private var clients: [String: ClientRow] = [:]
    /// Each send's message row, by id: ids grow with the log index, so they append.
    private var messages: [(id: UInt64, row: [UInt8])] = []
    /// Each send's (recipient, id): its `inbox` and `mailbox` key.
    private var received: [IndexKey] = []
    /// Each send's (lower user id, higher user id, id): its `conversations` key.
    private var exchanged: [IndexKey] = []

    /// The session's user is already remembered: `Mutation.session` found it by name.
    func remember(session account: Account, _ row: SessionRow, for tokenHash: Data) {
        if let key = TokenKey(tokenHash) { sessions[key] = (account, row) }
    }

    func session(for tokenHash: Data) -> (account: Account, row: SessionRow)? {
        TokenKey(tokenHash).flatMap { sessions[$0] }
    }

    func remember(user: Account) {
        users[user.name] = user.id
    }

    func user(named name: String) -> Account? {
        users[name].map { Account(id: $0, name: name) }
    }

    func forgetReads() {
        sessions.removeAll(keepingCapacity: true)
        users.removeAll(keepingCapacity: true)
    }

    /// The client's latest row: this batch's, or the stored one.
    func client(_ id: String, in txn: Transaction, _ tables: Tables) throws -> ClientRow? {
        if let row = clients[id] { return row }
        return try txn.get(tables.clients, Array(id.utf8)).map { try ClientRow(serializedBytes: $0) }
    }

    func record(client id: String, _ row: ClientRow) {
        clients[id] = row
    }

    /// The client is being removed: its row must not be written back at the end.
    func forget(client id: String) {
        clients[id] = nil
    }

    /// A send's message and index rows, written by the next `settle`.
    func addSend(_ row: [UInt8], recipient: UInt64, sender: UInt64, id: UInt64) {
        messages.append((id, row))
        received.append(IndexKey(recipient, id))
        exchanged.append(.conversation(sender, recipient, id))
    }

    /// Writes the deferred index rows and forgets what was read, before a command that reads
    /// or changes accounts, sessions or indexes.
    func settle(_ txn: inout Transaction, _ tables: Tables) throws {
        forgetReads()
        if !messages.isEmpty {
            try txn.withCursor(tables.messages) { cursor in
                for (id, row) in messages {
                    try withUnsafeBytes(of: id.bigEndian) { key in
                        try row.withUnsafeBytes { value in try cursor.put(key, value, append: true) }
                    }
                }
            }
            messages.removeAll(keepingCapacity: true)
        }
        if !received.isEmpty {
            received.sortAppendedKeys()
            try Self.insert(received, into: tables.inbox, &txn)
            try Self.insert(received, into: tables.mailbox, &txn)
            received.removeAll(keepingCapacity: true)
        }
        if !exchanged.isEmpty {
            exchanged.sortAppendedKeys()
            try Self.insert(exchanged, into: tables.conversations, &txn)
            exchanged.removeAll(keepingCapacity: true)
        }
    }

    /// Everything still owed to the tables, at the end of the transaction.
    func finish(_ txn: inout Transaction, _ tables: Tables) throws {
        try settle(&txn, tables)
        for (id, row) in clients {
            try txn.put(tables.clients, Array(id.utf8), try row.serializedBytes())
        }
        clients.removeAll()
    }

    /// Keys in order land next to each other: LMDB then finds most of them on the page the
    /// cursor already stands on instead of descending from the root.
    private static func insert(_ sorted: [IndexKey], into database: Database, _ txn: inout Transaction) throws {
        try txn.withCursor(database) { cursor in
            for key in sorted {
                try key.withBytes { bytes in try cursor.put(bytes, UnsafeRawBufferPointer(start: nil, count: 0)) }
            }
        }
    }
}

/// What a command needs to know of a user it reads: a batch caches this rather than whole
/// rows, whose password hash, salt and unknown fields would be retained and released on every
/// copy.
struct Account {
    var id: UInt64
    var name: String
}

/// A composite index key of two or three ids, ordered as its big-endian bytes are.
struct IndexKey: Comparable {
    var parts: (UInt64, UInt64, UInt64)
    var count: Int

    init(_ a: UInt64, _ b: UInt64) {
        parts = (a, b, 0)
        count = 2
    }

    init(_ a: UInt64, _ b: UInt64, _ c: UInt64) {
        parts = (a, b, c)
        count = 3
    }

    /// Conversations are keyed by the pair of user ids in ascending order, then the message
    /// id, so one range scan yields a conversation in send order from either side.
    static func conversation(_ a: UInt64, _ b: UInt64, _ id: UInt64) -> IndexKey {
        IndexKey(min(a, b), max(a, b), id)
    }

    static func < (lhs: IndexKey, rhs: IndexKey) -> Bool { lhs.parts < rhs.parts }
    static func == (lhs: IndexKey, rhs: IndexKey) -> Bool { lhs.parts == rhs.parts && lhs.count == rhs.count }

    /// The key's bytes, as `compositeKey` would make them, without allocating.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var bigEndian = (parts.0.bigEndian, parts.1.bigEndian, parts.2.bigEndian)
        return try withUnsafeBytes(of: &bigEndian) { try body(UnsafeRawBufferPointer(rebasing: $0.prefix(count * 8))) }
    }
}

/// A session token's SHA-256 as four words. Hashing `Data` feeds every byte through the
/// hasher, the largest cost of a send's session lookup; the digest's bits are already
/// uniform, so one word is as good a hash, and equality still compares all four.
struct TokenKey: Hashable {
    var words: (UInt64, UInt64, UInt64, UInt64)

    init?(_ hash: Data) {
        guard hash.count == 32 else { return nil }
        words = hash.withUnsafeBytes { bytes in
            (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
             bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
    }

    static func == (a: TokenKey, b: TokenKey) -> Bool {
        a.words == b.words
    }
}
