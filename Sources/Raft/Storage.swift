/// Why storage could not serve a read.
public enum StorageError: Error, Sendable, Equatable {
    /// The entries were discarded by compaction: send a snapshot instead.
    case compacted
    /// The entries do not exist (yet).
    case unavailable
    /// A snapshot is being prepared; try again later.
    case snapshotTemporarilyUnavailable
}

/// The durable log as the consensus core reads it. Writing is the application's job: it
/// persists each `Ready` and then calls `advance`. Any other failure (a damaged entry) is not
/// something consensus can recover from; implementations stop the process.
public protocol RaftStorage: AnyObject {
    /// The hard state and configuration at startup.
    func initialState() -> (HardState, ClusterConfiguration)
    /// Entries in `from..<to`, stopping once `maxBytes` of data is exceeded (at least one).
    func entries(from: Index, to: Index, maxBytes: Int) throws(StorageError) -> [Entry]
    /// The term of entry `index`; the snapshot's term at the snapshot index.
    func term(at index: Index) throws(StorageError) -> Term
    /// The first index held; the snapshot index + 1.
    func firstIndex() -> Index
    /// The last index held; the snapshot index when no entries are.
    func lastIndex() -> Index
    /// The most recent snapshot, to send to a follower that is too far behind.
    func snapshot() throws(StorageError) -> Snapshot
}

/// Storage in memory: the simulator's disk, and the reference for what persisting means.
public final class MemoryStorage: RaftStorage {
    public private(set) var hardState: HardState
    public private(set) var snapshotValue: Snapshot
    /// `log[0]` is a dummy entry standing for the snapshot (its index and term).
    public private(set) var log: [Entry]

    public init(configuration: ClusterConfiguration) {
        hardState = HardState()
        snapshotValue = Snapshot(metadata: SnapshotMetadata(configuration: configuration))
        log = [Entry(index: 0, term: 0)]
    }

    public func initialState() -> (HardState, ClusterConfiguration) {
        (hardState, snapshotValue.metadata.configuration)
    }

    public func firstIndex() -> Index { log[0].index + 1 }
    public func lastIndex() -> Index { log[0].index + Index(log.count) - 1 }

    public func term(at index: Index) throws(StorageError) -> Term {
        let offset = log[0].index
        guard index >= offset else { throw .compacted }
        guard index - offset < Index(log.count) else { throw .unavailable }
        return log[Int(index - offset)].term
    }

    public func entries(from: Index, to: Index, maxBytes: Int) throws(StorageError) -> [Entry] {
        let offset = log[0].index
        guard from > offset else { throw .compacted }
        guard to <= lastIndex() + 1 else { throw .unavailable }
        var result: [Entry] = []
        var size = 0
        for entry in log[Int(from - offset)..<Int(to - offset)] {
            size += entry.data.count
            if !result.isEmpty && size > maxBytes { break }
            result.append(entry)
        }
        return result
    }

    /// As the node's store: none until something was compacted (the bootstrap configuration
    /// is no snapshot a follower could be sent). `snapshotValue` still holds the bootstrap one.
    public func snapshot() throws(StorageError) -> Snapshot {
        guard snapshotValue.metadata.index > 0 else { throw .snapshotTemporarilyUnavailable }
        return snapshotValue
    }

    // MARK: Persisting (what the application does with a Ready)

    public func setHardState(_ state: HardState) {
        hardState = state
    }

    /// Appends entries, discarding any stored suffix they overwrite.
    public func append(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        let offset = log[0].index
        guard first.index > offset else {
            // Already covered by the snapshot: keep only what lies beyond it.
            append(entries.filter { $0.index > offset })
            return
        }
        precondition(first.index <= lastIndex() + 1, "append leaves a gap at \(first.index)")
        log.removeSubrange(Int(first.index - offset)...)
        log += entries
    }

    /// Installs a snapshot received from the leader, discarding the whole log.
    public func applySnapshot(_ snapshot: Snapshot) {
        snapshotValue = snapshot
        log = [Entry(index: snapshot.metadata.index, term: snapshot.metadata.term)]
    }

    /// Records a snapshot of the application at `index` and discards the log up to it.
    public func compact(to index: Index, data: [UInt8], configuration: ClusterConfiguration) {
        let offset = log[0].index
        guard index > offset, index <= lastIndex() else { return }
        let term = log[Int(index - offset)].term
        snapshotValue = Snapshot(metadata: SnapshotMetadata(index: index, term: term, configuration: configuration), data: data)
        log.removeSubrange(0..<Int(index - offset))
        log[0] = Entry(index: index, term: term)
    }
}
