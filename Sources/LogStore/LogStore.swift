/// The durable Raft log of one node: entries, hard state and snapshot metadata in one LMDB
/// environment that is fsynced on every commit.
///
/// Index `i` is stored under the 8-byte big-endian key `i`, so the B+tree order is log order
/// and appends are always at the right edge of the tree.
public final class LogStore: Sendable {
    public let environment: Environment
    private let entries: Database
    private let meta: Database

    private static let hardStateKey = Array("hard-state".utf8)
    private static let snapshotKey = Array("snapshot".utf8)

    /// Opens (or creates) the log in `directory`.
    public init(directory: String, readOnly: Bool = false) throws {
        environment = try Environment(path: directory, options: .init(maxDatabases: 4, skipSync: false, readOnly: readOnly))
        let handles = try environment.openDatabases(["entries", "meta"])
        entries = handles[0]
        meta = handles[1]
    }

    public var path: String { environment.path }

    // MARK: Reading

    /// The first index still held in the log (snapshot index + 1 when the log is empty).
    public func firstIndex() throws -> UInt64 {
        try environment.read { txn in try firstIndex(txn) }
    }

    /// The last index in the log, or the snapshot index when the log is empty.
    public func lastIndex() throws -> UInt64 {
        try environment.read { txn in try lastIndex(txn) }
    }

    public func entry(at index: UInt64) throws -> LogEntry? {
        try environment.read { txn in
            try txn.withValue(entries, index.bigEndianBytes) { bytes in
                try bytes.map { bytes in try EntryCodec.decode(index: index, bytes, path: path) }
            }
        }
    }

    /// Entries `from...through`, in order, stopping early once `maxBytes` of payload is
    /// exceeded (at least one entry is always returned when `from` exists).
    public func entries(from: UInt64, through: UInt64, maxBytes: Int = .max) throws -> [LogEntry] {
        guard from <= through else { return [] }
        return try environment.read { txn in
            try txn.withCursor(entries) { cursor in
                var result: [LogEntry] = []
                var bytes = 0
                var row = try cursor.seek(atOrAfter: from.bigEndianBytes)
                var expected = from
                while let (key, value) = row, let index = UInt64(bigEndianBytes: key), index <= through {
                    guard index == expected else { break }
                    let entry = try value.withUnsafeBytes { buffer in
                        try EntryCodec.decode(index: index, buffer, path: path)
                    }
                    bytes += entry.payload.count
                    if !result.isEmpty && bytes > maxBytes { break }
                    result.append(entry)
                    expected += 1
                    row = try cursor.next()
                }
                return result
            }
        }
    }

    /// The term of the entry at `index`; the snapshot's term at the snapshot index; nil when
    /// the index is compacted away or beyond the end.
    public func term(at index: UInt64) throws -> UInt64? {
        try environment.read { txn in
            let snapshot = try snapshotMetadata(txn)
            if index == snapshot.index { return snapshot.term }
            return try txn.withValue(entries, index.bigEndianBytes) { bytes in
                try bytes.map { bytes in try EntryCodec.term(index: index, bytes, path: path) }
            }
        }
    }

    public func hardState() throws -> StoredHardState {
        try environment.read { txn in try hardState(txn) }
    }

    public func snapshotMetadata() throws -> StoredSnapshot {
        try environment.read { txn in try snapshotMetadata(txn) }
    }

    /// Number of entries held.
    public func count() throws -> Int {
        try environment.read { txn in try txn.count(entries) }
    }

    // MARK: Writing (each call is one fsynced transaction)

    /// Appends `batch`, first discarding any suffix it overwrites (a follower replacing a
    /// conflicting tail). The batch must be consecutive and start no later than
    /// `lastIndex + 1` and after the snapshot.
    public func append(_ batch: [LogEntry]) throws {
        try save(hardState: nil, entries: batch)
    }

    /// Persists a Raft "ready": the hard state and the new entries together, so a crash can
    /// never leave a vote without the entries (or the reverse).
    public func save(hardState: StoredHardState?, entries batch: [LogEntry]) throws {
        if hardState == nil && batch.isEmpty { return }
        try environment.write { txn in
            if let hardState {
                try txn.put(meta, Self.hardStateKey, MetaCodec.encode(hardState))
            }
            try appendInTransaction(&txn, batch)
        }
    }

    /// Removes every entry with index ≥ `index`.
    public func truncateSuffix(from index: UInt64) throws {
        try environment.write { txn in try deleteSuffix(&txn, from: index) }
    }

    public func setHardState(_ state: StoredHardState) throws {
        try save(hardState: state, entries: [])
    }

    /// Records that everything up to `snapshot.index` is held by a snapshot, and discards
    /// those entries. Entries after it are kept when they exist; when the snapshot is ahead of
    /// the log (an installed snapshot), the whole log is discarded.
    public func compact(to snapshot: StoredSnapshot) throws {
        try environment.write { txn in
            let current = try snapshotMetadata(txn)
            guard snapshot.index > current.index else { return }
            let matches = try txn.withValue(entries, snapshot.index.bigEndianBytes) { bytes in
                try bytes.map { bytes in try EntryCodec.term(index: snapshot.index, bytes, path: path) } == snapshot.term
            }
            if !matches {
                try txn.clear(entries)
            } else {
                try txn.withCursor(entries) { cursor in
                    var row = try cursor.first()
                    while let (key, _) = row, let index = UInt64(bigEndianBytes: key), index <= snapshot.index {
                        try cursor.deleteCurrent()
                        row = try cursor.seek(atOrAfter: key)
                    }
                }
            }
            try txn.put(meta, Self.snapshotKey, MetaCodec.encode(snapshot))
        }
    }

    // MARK: Internals

    private func appendInTransaction(_ txn: inout Transaction, _ batch: [LogEntry]) throws {
        guard let first = batch.first else { return }
        for (previous, next) in zip(batch, batch.dropFirst()) where next.index != previous.index + 1 {
            throw LogStoreError.unorderedBatch(at: next.index)
        }
        let snapshotIndex = try snapshotMetadata(txn).index
        let last = try lastIndex(txn)
        guard first.index > snapshotIndex, first.index <= last + 1 else {
            throw LogStoreError.notContiguous(expected: (snapshotIndex + 1)...(last + 1), got: first.index, path: path)
        }
        if first.index <= last {
            try deleteSuffix(&txn, from: first.index)
        }
        for entry in batch {
            try txn.put(entries, entry.index.bigEndianBytes, EntryCodec.encode(entry), append: true)
        }
    }

    private func deleteSuffix(_ txn: inout Transaction, from index: UInt64) throws {
        try txn.withCursor(entries) { cursor in
            var row = try cursor.last()
            while let (key, _) = row, let current = UInt64(bigEndianBytes: key), current >= index {
                try cursor.deleteCurrent()
                row = try cursor.last()
            }
        }
    }

    private func firstIndex(_ txn: Transaction) throws -> UInt64 {
        let first = try txn.withCursor(entries) { cursor in try cursor.first().flatMap { UInt64(bigEndianBytes: $0.key) } }
        return try first ?? snapshotMetadata(txn).index + 1
    }

    private func lastIndex(_ txn: Transaction) throws -> UInt64 {
        let last = try txn.withCursor(entries) { cursor in try cursor.last().flatMap { UInt64(bigEndianBytes: $0.key) } }
        return try last ?? snapshotMetadata(txn).index
    }

    private func hardState(_ txn: Transaction) throws -> StoredHardState {
        guard let bytes = try txn.get(meta, Self.hardStateKey) else { return StoredHardState() }
        guard let state = MetaCodec.decodeHardState(bytes) else {
            throw LogStoreError.corruptRecord(name: "hard-state", path: path)
        }
        return state
    }

    private func snapshotMetadata(_ txn: Transaction) throws -> StoredSnapshot {
        guard let bytes = try txn.get(meta, Self.snapshotKey) else { return StoredSnapshot() }
        guard let snapshot = MetaCodec.decodeSnapshot(bytes) else {
            throw LogStoreError.corruptRecord(name: "snapshot", path: path)
        }
        return snapshot
    }
}
