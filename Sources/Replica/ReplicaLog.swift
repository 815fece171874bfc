import Raft

/// The durable Raft log a replica runs on: what the core reads (`RaftStorage`) and what the
/// loop writes. The node's is LMDB (`LogStoreAdapter`); a simulation's is a disk it can fail
/// and crash at will.
///
/// Every write is durable when it returns: the loop sends a follower's answers and tells
/// callers their commands committed only after it (see `Replica.Loop.handleReady`). A write
/// that throws may or may not have reached the disk; the loop stops the node, and the next
/// start reads whichever it was.
package protocol ReplicaLog: RaftStorage {
    /// The configuration a new cluster starts with, until a snapshot records one.
    var bootstrap: ClusterConfiguration { get }

    /// The latest snapshot the log records (index 0 when none): its term and membership.
    func snapshotMetadata() -> SnapshotMetadata

    /// Writes a `Ready`'s hard state, its entries (replacing any conflicting suffix) and, for
    /// an installed snapshot, the snapshot's record, in one atomic, synced write.
    func persist(hardState: HardState?, entries: [Entry], snapshot: SnapshotMetadata?) throws

    /// Records a snapshot this node took and discards the log behind it but the last
    /// `trailingEntries`; returns the first index the log still holds.
    func compact(to snapshot: SnapshotMetadata, trailingEntries: UInt64) throws -> Index

    /// Reads entries' terms from any thread (a snapshot is taken off the loop's thread).
    var termReader: @Sendable (Index) throws -> Term? { get }
}

extension ReplicaLog {
    func persist(hardState: HardState?, entries: [Entry]) throws {
        try persist(hardState: hardState, entries: entries, snapshot: nil)
    }
}
