import CrashPoints
import Foundation
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
    var waiters: [ReplicaReply<SnapshotReport>] = []

    mutating func failWaiters(_ error: ReplicaError) {
        for waiter in waiters { waiter(.failure(error)) }
        waiters = []
    }
}

extension Replica.Loop {
    // MARK: Taking snapshots

    func requestSnapshot(_ reply: @escaping ReplicaReply<SnapshotReport>) {
        snapshots.waiters.append(reply)
        startSnapshot()
    }

    /// Starts a snapshot once `snapshotInterval` entries were applied since the last one.
    func maybeSnapshot() {
        let interval = options.snapshotInterval
        guard interval > 0, appliedIndex >= snapshots.lastIndex + interval else { return }
        startSnapshot()
    }

    /// Copies the machine's state on another thread (`StateMachine.takeSnapshot`), so applying
    /// goes on meanwhile, and the loop hears back through its inbox.
    func startSnapshot() {
        guard !snapshots.inFlight else { return }
        snapshots.inFlight = true
        let machine = self.machine
        let store = snapshotStore
        let termAt = storage.termReader
        let submit = self.submit
        let started = clock.now
        offLoop {
            let result: Result<SnapshotInfo, SnapshotFailure>
            do {
                result = .success(try machine.takeSnapshot(into: store, termAt: termAt))
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
            firstIndex = try storage.compact(to: metadata, trailingEntries: options.snapshotTrailingEntries)
        } catch {
            // `run` ends the loop after this input.
            snapshots.failWaiters(.snapshotFailed("cannot compact the Raft log: \(error)"))
            return stop(because: StorageFailure(doing: "compacting the Raft log to the snapshot at \(info.index)", error: error))
        }
        snapshots.lastIndex = max(snapshots.lastIndex, info.index)
        let recorded = storage.snapshotMetadata()
        if let latest = snapshotStore.find(index: recorded.index, term: recorded.term) {
            snapshotStore.prune(keeping: latest)
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

    /// Replaces this follower's log and state by the leader's snapshot, which the peer
    /// service stored (complete, verified, fsynced) before handing its message to Raft.
    ///
    /// The log records the snapshot first, in the same transaction as the hard state; then
    /// the machine installs it. A crash in between leaves the state behind the log's start,
    /// and opening the data directory finishes the swap from the stored snapshot.
    func install(_ snapshot: Snapshot, hardState: HardState?, entries: [Entry]) throws {
        let metadata = snapshot.metadata
        guard let info = snapshotStore.find(index: metadata.index, term: metadata.term) else {
            // Only the peer service hands snapshots to Raft, and only once stored.
            logger.critical("Raft restored a snapshot at \(metadata.index) that is not stored")
            fatalError("Raft restored a snapshot at \(metadata.index) that is not stored in \(snapshotStore.directory)")
        }
        CrashPoint.reach("install-begin")
        let started = clock.now
        // `ReadyHandling` let go of any older commit-only hard state before this write, so a
        // stop after a failed install cannot write it over the snapshot's.
        try storage.persist(hardState: hardState, entries: entries, snapshot: metadata)
        CrashPoint.reach("install-log")
        try machine.install(info, from: snapshotStore)
        appliedIndex = metadata.index
        appliedConfiguration = metadata.configuration
        snapshots.lastIndex = max(snapshots.lastIndex, metadata.index)
        snapshotStore.prune(keeping: info)
        snapshotStore.removePartials(except: nil)
        metrics.recordSnapshot(.installed, bytes: info.size, duration: clock.now - started)
        logger.info("installed the leader's snapshot at index \(metadata.index) (term \(metadata.term), \(info.size) bytes)")
    }
}
