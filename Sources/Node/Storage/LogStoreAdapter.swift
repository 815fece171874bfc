import Foundation
import Logging
import LogStore
import Raft
import Replica

/// Serves the consensus core from the LMDB log. A damaged entry (its checksum fails) or a
/// read the disk refuses is not something consensus can work around, and the core's reads
/// cannot fail: the process ends at once, exit 74, after one critical line naming the entry,
/// before the entry is served, sent or applied. The repair is the node's data from its peers.
final class LogStoreAdapter: ReplicaLog {
    let store: LogStore
    /// The configuration a new cluster starts with, until a snapshot records one.
    let bootstrap: ClusterConfiguration
    let logger: Logger

    init(store: LogStore, bootstrap: ClusterConfiguration, logger: Logger = Logger(label: "chorus.log")) {
        self.store = store
        self.bootstrap = bootstrap
        self.logger = logger
    }

    func initialState() -> (Raft.HardState, ClusterConfiguration) {
        let hard = stopOnError { try store.hardState() }
        return (Raft.HardState(term: hard.term, vote: hard.vote, commit: hard.commit), snapshotMetadata().configuration)
    }

    // Both reads below sit on the replication path: the common case is one read
    // transaction, and the snapshot metadata is consulted only to explain a miss.

    func entries(from: Raft.Index, to: Raft.Index, maxBytes: Int) throws(StorageError) -> [Raft.Entry] {
        guard from < to else { return [] }
        let stored = stopOnError { try store.entries(from: from, through: to - 1, maxBytes: maxBytes) }
        guard stored.first?.index == from else { throw missing(from) }
        return stored.map(Self.entry)
    }

    func term(at index: Raft.Index) throws(StorageError) -> Raft.Term {
        // The store answers the snapshot's own index with the snapshot's term.
        guard let term = stopOnError({ try store.term(at: index) }) else { throw missing(index) }
        return term
    }

    /// Why `index` is not in the log: compacted away, or not written yet.
    private func missing(_ index: Raft.Index) -> StorageError {
        index <= stopOnError({ try store.logStart().index }) ? .compacted : .unavailable
    }

    func firstIndex() -> Raft.Index { stopOnError { try store.firstIndex() } }
    func lastIndex() -> Raft.Index { stopOnError { try store.lastIndex() } }

    /// The latest snapshot, metadata only: its file is streamed to the follower by the
    /// transport (`SnapshotSender`), not carried in the Raft message.
    func snapshot() throws(StorageError) -> Raft.Snapshot {
        let metadata = snapshotMetadata()
        // Nothing was ever compacted, so every follower can be caught up from the log.
        guard metadata.index > 0 else { throw .snapshotTemporarilyUnavailable }
        return Raft.Snapshot(metadata: metadata)
    }

    func snapshotMetadata() -> Raft.SnapshotMetadata {
        let meta = stopOnError { try store.snapshotMetadata() }
        let configuration = meta.configuration.isEmpty ? bootstrap : (ClusterConfiguration(encoded: meta.configuration) ?? bootstrap)
        return Raft.SnapshotMetadata(index: meta.index, term: meta.term, configuration: configuration)
    }

    /// Persists a `Ready`'s hard state, entries and installed snapshot in one fsynced
    /// transaction.
    func persist(hardState: Raft.HardState?, entries: [Raft.Entry], snapshot: Raft.SnapshotMetadata?) throws {
        try store.save(
            hardState: hardState.map { StoredHardState(term: $0.term, vote: $0.vote, commit: $0.commit) },
            entries: entries.map { LogEntry(index: $0.index, term: $0.term, kind: $0.kind.rawValue, payload: $0.data) },
            snapshot: snapshot.map(Self.stored)
        )
    }

    /// Records a snapshot this node took and discards the log behind it, keeping
    /// `trailingEntries` for followers that are only a little behind.
    func compact(to snapshot: Raft.SnapshotMetadata, trailingEntries: UInt64) throws -> Raft.Index {
        let through = snapshot.index > trailingEntries ? snapshot.index - trailingEntries : 0
        try store.compact(to: Self.stored(snapshot), discardingThrough: through)
        return try store.firstIndex()
    }

    var termReader: @Sendable (Raft.Index) throws -> Raft.Term? {
        let store = self.store
        return { try store.term(at: $0) }
    }

    static func stored(_ metadata: Raft.SnapshotMetadata) -> StoredSnapshot {
        StoredSnapshot(index: metadata.index, term: metadata.term, configuration: metadata.configuration.encoded())
    }

    static func entry(_ stored: LogEntry) -> Raft.Entry {
        // Unreachable: the node refuses to start on a log holding a kind it does not know
        // (`DataDirectory.refuseUnsound`), appends only kinds `MessageCoding` or its own core
        // made, and the entry's checksum covers the kind byte (a changed one reads as
        // `corruptEntry`, which stops the node like any damaged read here).
        guard let kind = Raft.Entry.Kind(rawValue: stored.kind) else {
            fatalError("log entry \(stored.index) has entry kind \(stored.kind), which no build of log format \(LogStore.format) writes: the log is damaged; restore this node from a peer")
        }
        return Raft.Entry(index: stored.index, term: stored.term, kind: kind, data: stored.payload)
    }

    private func stopOnError<T>(_ body: () throws -> T) -> T {
        do {
            return try body()
        } catch {
            // Nothing unwinds through the core: the process ends here, its log lines flushed,
            // with no crash report (the cause is the disk, not the code).
            logger.critical("\(StorageFailure(doing: "reading the Raft log", error: error))")
            fflush(nil)
            _exit(StorageFailure.exitStatus)
        }
    }
}
