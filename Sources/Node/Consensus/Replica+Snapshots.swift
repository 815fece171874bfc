import Foundation
import LMDB
import Projections
import Raft

/// What a snapshot taken on request reports.
public struct SnapshotReport: Sendable {
    public var info: SnapshotInfo
    /// The first index the log still holds after compaction.
    public var firstIndex: Index
    public var duration: Duration
}

public struct SnapshotFailure: Error, CustomStringConvertible {
    public let description: String
}

/// When the next snapshot is due, and who waits for the one being taken.
struct SnapshotSchedule {
    /// Index of the latest snapshot recorded in the log.
    var lastIndex: Index
    var inFlight = false
    var waiters: [Replica.Reply<SnapshotReport>] = []

    mutating func failWaiters(_ error: ReplicaError) {
        for waiter in waiters { waiter(.failure(error)) }
        waiters = []
    }
}

extension Replica.Loop {
    // MARK: Taking snapshots

    func requestSnapshot(_ reply: @escaping Replica.Reply<SnapshotReport>) {
        snapshots.waiters.append(reply)
        startSnapshot()
    }

    /// Starts a snapshot once `snapshotInterval` entries were applied since the last one.
    func maybeSnapshot() {
        let interval = configuration.snapshotInterval
        guard interval > 0, appliedIndex >= snapshots.lastIndex + interval else { return }
        startSnapshot()
    }

    /// Copies the projections on another thread: the copy reads through an LMDB read
    /// transaction, so applying goes on meanwhile, and the loop hears back through its inbox.
    func startSnapshot() {
        guard !snapshots.inFlight else { return }
        snapshots.inFlight = true
        let state = self.state
        let store = data.snapshots
        let log = data.log
        let submit = self.submit
        let started = clock.now
        Thread.detachNewThread {
            let result: Result<SnapshotInfo, SnapshotFailure>
            do {
                // Durable before the log behind it goes: a restart must not find the
                // projections behind the log's new start. (Even then, the snapshot itself
                // would restore them.)
                try state.sync()
                result = .success(try store.take(from: state, termAt: { try log.term(at: $0) }))
            } catch {
                result = .failure(SnapshotFailure(description: "\(error)"))
            }
            submit(.snapshotTaken(result, started: started))
        }
    }

    func snapshotTaken(_ result: Result<SnapshotInfo, SnapshotFailure>, started: ContinuousClock.Instant) {
        snapshots.inFlight = false
        let info: SnapshotInfo
        switch result {
        case let .success(taken):
            info = taken
        case let .failure(error):
            logger.error("snapshot failed: \(error)")
            snapshots.failWaiters(.snapshotFailed(error.description))
            return
        }
        CrashPoint.reach("snapshot-stored")
        let firstIndex: Index
        do {
            let metadata = SnapshotMetadata(index: info.index, term: info.term, configuration: configuration(of: info))
            firstIndex = try storage.compact(to: metadata, trailingEntries: configuration.snapshotTrailingEntries)
        } catch {
            logger.critical("cannot compact the Raft log: \(error)")
            fatalError("cannot compact the Raft log: \(error)")
        }
        snapshots.lastIndex = max(snapshots.lastIndex, info.index)
        let recorded = storage.snapshotMetadata()
        if let latest = data.snapshots.find(index: recorded.index, term: recorded.term) {
            data.snapshots.prune(keeping: latest)
        }
        let duration = clock.now - started
        metrics.recordSnapshot(.taken, bytes: info.size, duration: duration)
        logger.info("snapshot at index \(info.index) (term \(info.term), \(info.size) bytes) in \(duration); the log now starts at \(firstIndex)")
        let report = SnapshotReport(info: info, firstIndex: firstIndex, duration: duration)
        for waiter in snapshots.waiters { waiter(.success(report)) }
        snapshots.waiters = []
    }

    func configuration(of info: SnapshotInfo) -> ClusterConfiguration {
        ClusterConfiguration(encoded: info.configuration) ?? storage.bootstrap
    }

    // MARK: Installing a leader's snapshot

    /// Replaces this follower's log and projections by the leader's snapshot, which the peer
    /// service stored (complete, verified, fsynced) before handing its message to Raft.
    ///
    /// The log records the snapshot first, in the same transaction as the hard state; then
    /// the projections are swapped. A crash in between leaves projections behind the log's
    /// start, and opening the data directory finishes the swap from the stored snapshot.
    func install(_ snapshot: Snapshot, hardState: HardState?, entries: [Entry]) throws {
        let metadata = snapshot.metadata
        guard let info = data.snapshots.find(index: metadata.index, term: metadata.term) else {
            // Only the peer service hands snapshots to Raft, and only once stored.
            logger.critical("Raft restored a snapshot at \(metadata.index) that is not stored")
            fatalError("Raft restored a snapshot at \(metadata.index) that is not stored in \(data.snapshots.directory)")
        }
        CrashPoint.reach("install-begin")
        let started = clock.now
        try storage.persist(hardState: hardState, entries: entries, snapshot: metadata)
        CrashPoint.reach("install-log")
        let installed = try data.stateDirectory.install(snapshotFile: data.snapshots.dataPath(info), generation: info.name)
        current.replace(with: installed)
        state = installed
        appliedIndex = metadata.index
        appliedConfiguration = metadata.configuration
        snapshots.lastIndex = max(snapshots.lastIndex, metadata.index)
        data.snapshots.prune(keeping: info)
        data.snapshots.removePartials()
        metrics.recordSnapshot(.installed, bytes: info.size, duration: clock.now - started)
        logger.info("installed the leader's snapshot at index \(metadata.index) (term \(metadata.term), \(info.size) bytes)")
    }
}
