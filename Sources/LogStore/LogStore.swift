import LMDB

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
    /// The last discarded index and its term. Compaction keeps a window of entries behind the
    /// snapshot for slow followers, so this can lie below the snapshot index.
    private static let logStartKey = Array("log-start".utf8)
    /// The layout of this store: the keys above and `EntryCodec`'s framing of an entry.
    private static let formatKey = Array("format".utf8)
    /// The format this build reads and writes. Logs written before format versions have no
    /// key and the same layout: they are stamped with it when opened for writing.
    public static let format: UInt32 = 1

    /// The format the store carried when opened; nil when it predates format versions.
    public let openedFormat: UInt32?

    /// Opens (or creates) the log in `directory`. Throws `LogStoreError.newerFormat` for a
    /// log a newer build wrote.
    public init(directory: String, readOnly: Bool = false) throws {
        environment = try Environment(path: directory, options: .init(maxDatabases: 4, skipSync: false, readOnly: readOnly))
        let handles = try environment.openDatabases(["entries", "meta"])
        entries = handles[0]
        meta = handles[1]
        let meta = meta
        let found = try environment.read { txn in try txn.get(meta, Self.formatKey).flatMap { UInt32(bigEndianBytes: $0) } }
        if let found, found > Self.format {
            throw LogStoreError.newerFormat(found: found, known: Self.format, path: directory)
        }
        openedFormat = found
        if found != Self.format, !readOnly {
            try environment.write { txn in try txn.put(meta, Self.formatKey, Self.format.bigEndianBytes) }
        }
    }

    public var path: String { environment.path }

    // MARK: Reading

    /// The first index still held in the log (the last discarded index + 1 when it is empty).
    public func firstIndex() throws -> UInt64 {
        try environment.read { txn in try firstIndex(txn) }
    }

    /// The last index in the log, or the last discarded index when the log is empty.
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

    /// The term of the entry at `index`; also known for the last discarded index and the
    /// snapshot index; nil when the index is compacted away or beyond the end.
    ///
    /// Asked for every AppendEntries the leader sends, so the entry is looked up first; the two
    /// records matter only on a miss (an entry the log still holds has the term they record).
    public func term(at index: UInt64) throws -> UInt64? {
        try environment.read { txn in
            let held = try txn.withValue(entries, index.bigEndianBytes) { bytes in
                try bytes.map { bytes in try EntryCodec.term(index: index, bytes, path: path) }
            }
            if let held { return held }
            let start = try logStart(txn)
            if index == start.index { return start.term }
            let snapshot = try snapshotMetadata(txn)
            return index == snapshot.index ? snapshot.term : nil
        }
    }

    public func hardState() throws -> StoredHardState {
        try environment.read { txn in try hardState(txn) }
    }

    public func snapshotMetadata() throws -> StoredSnapshot {
        try environment.read { txn in try snapshotMetadata(txn) }
    }

    /// The last discarded index and its term ((0, 0) for a log never compacted).
    public func logStart() throws -> (index: UInt64, term: UInt64) {
        try environment.read { txn in try logStart(txn) }
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
    ///
    /// `snapshot`, when given, is a snapshot installed from the leader: it is recorded first,
    /// in the same transaction, so the log never points past what the node holds.
    public func save(hardState: StoredHardState?, entries batch: [LogEntry], snapshot: StoredSnapshot? = nil) throws {
        if hardState == nil && batch.isEmpty && snapshot == nil { return }
        try environment.write { txn in
            if let snapshot {
                try compactInTransaction(&txn, to: snapshot, discardingThrough: snapshot.index)
            }
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

    /// Records that everything up to `snapshot.index` is held by a snapshot, and discards the
    /// entries up to `discardingThrough` (at most the snapshot index; by default all it
    /// covers). Keeping a window below the snapshot lets a follower that is only a little
    /// behind catch up from the log instead of receiving the whole snapshot. When the snapshot
    /// does not match the log (one installed from the leader, ahead of or conflicting with
    /// what is held), the whole log is discarded.
    public func compact(to snapshot: StoredSnapshot, discardingThrough: UInt64? = nil) throws {
        try environment.write { txn in
            try compactInTransaction(&txn, to: snapshot, discardingThrough: discardingThrough ?? snapshot.index)
        }
    }

    // MARK: Internals

    private func compactInTransaction(_ txn: inout Transaction, to snapshot: StoredSnapshot, discardingThrough: UInt64) throws {
        let current = try snapshotMetadata(txn)
        guard snapshot.index >= current.index else { return }
        let start = try logStart(txn)
        let held: UInt64?
        if snapshot.index == start.index {
            held = start.term
        } else {
            held = try txn.withValue(entries, snapshot.index.bigEndianBytes) { bytes in
                try bytes.map { bytes in try EntryCodec.term(index: snapshot.index, bytes, path: path) }
            }
        }
        if snapshot.index < start.index || held != snapshot.term {
            if snapshot.index < start.index && snapshot.index > 0 { return }
            try txn.clear(entries)
            try txn.put(meta, Self.logStartKey, MetaCodec.encode(StoredSnapshot(index: snapshot.index, term: snapshot.term)))
        } else {
            let through = min(discardingThrough, snapshot.index)
            if through > start.index {
                let term = try txn.withValue(entries, through.bigEndianBytes) { bytes in
                    try bytes.map { bytes in try EntryCodec.term(index: through, bytes, path: path) }
                }
                guard let term else { throw LogStoreError.notContiguous(expected: (start.index + 1)...through, got: through, path: path) }
                try txn.withCursor(entries) { cursor in
                    var row = try cursor.first()
                    while let (key, _) = row, let index = UInt64(bigEndianBytes: key), index <= through {
                        try cursor.deleteCurrent()
                        row = try cursor.seek(atOrAfter: key)
                    }
                }
                try txn.put(meta, Self.logStartKey, MetaCodec.encode(StoredSnapshot(index: through, term: term)))
            }
        }
        if snapshot.index > current.index || current.index == 0 {
            try txn.put(meta, Self.snapshotKey, MetaCodec.encode(snapshot))
        }
    }

    private func appendInTransaction(_ txn: inout Transaction, _ batch: [LogEntry]) throws {
        guard let first = batch.first else { return }
        for (previous, next) in zip(batch, batch.dropFirst()) where next.index != previous.index + 1 {
            throw LogStoreError.unorderedBatch(at: next.index)
        }
        let startIndex = try logStart(txn).index
        let last = try lastIndex(txn)
        guard first.index > startIndex, first.index <= last + 1 else {
            throw LogStoreError.notContiguous(expected: (startIndex + 1)...(last + 1), got: first.index, path: path)
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
        return try first ?? logStart(txn).index + 1
    }

    private func lastIndex(_ txn: Transaction) throws -> UInt64 {
        let last = try txn.withCursor(entries) { cursor in try cursor.last().flatMap { UInt64(bigEndianBytes: $0.key) } }
        return try last ?? logStart(txn).index
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

    private func logStart(_ txn: Transaction) throws -> (index: UInt64, term: UInt64) {
        guard let bytes = try txn.get(meta, Self.logStartKey) else {
            // Written by every compaction; a log without it was never compacted.
            return (0, 0)
        }
        guard let start = MetaCodec.decodeSnapshot(bytes) else {
            throw LogStoreError.corruptRecord(name: "log-start", path: path)
        }
        return (start.index, start.term)
    }
}
