import Raft

/// One simulated server: a durable `MemoryStorage` (its disk), the consensus core (gone while
/// crashed), and a toy application whose state is a hash chain of the commands it applied.
final class SimNode {
    let id: NodeID
    let storage: MemoryStorage
    var raft: RaftCore?
    var options: RaftOptions

    /// A ready taken from the core whose write is still "on the disk" (slow disk).
    var pendingWrite: (ready: Ready, due: Int)?
    /// The node's own handling of readies (`ReadyHandling`), and the commit-only hard state
    /// it holds back: lost in a crash unless a later write carried it to disk.
    var readyHandling = ReadyHandling()

    // The application.
    var appliedIndex: Index = 0
    var appliedHash: UInt64 = 0xCBF2_9CE4_8422_2325
    var appliedConfiguration: ClusterConfiguration
    var appliedData: [Index: [UInt8]] = [:]
    var readStates: [ReadState] = []

    /// Highest commit index seen in this incarnation (it must never go down).
    var highestCommit: Index = 0
    /// The configuration and its count (`configurationVersion`) when last checked in this
    /// incarnation: a change must move the count, or the node would never refresh its peers.
    var seenConfiguration: (ClusterConfiguration, UInt64)?
    /// What the disk and core looked like when the configuration was last checked.
    var configurationCheckedAt: [UInt64] = []
    var incarnation = 0
    /// The cluster version the application applied (`VersionModel`); in its snapshots.
    var clusterVersion: UInt32 = 1
    /// Stopped at an entry its build does not apply (`VersionModel`).
    var halted = false

    init(id: NodeID, configuration: ClusterConfiguration, options: RaftOptions) {
        self.id = id
        self.options = options
        storage = MemoryStorage(configuration: configuration)
        appliedConfiguration = configuration
        raft = RaftCore(storage: storage, options: options)
    }

    var isUp: Bool { raft != nil }

    /// Loses everything not written to storage.
    func crash() {
        raft = nil
        pendingWrite = nil
        readyHandling.crash()
        readStates = []
    }

    /// Starts again from storage; the application restarts from the snapshot and replays.
    func restart() {
        incarnation += 1
        halted = false
        let snapshot = storage.snapshotValue
        restoreApplication(from: snapshot)
        var options = self.options
        options.applied = snapshot.metadata.index
        options.seed &+= UInt64(incarnation)
        raft = RaftCore(storage: storage, options: options)
        highestCommit = 0
        seenConfiguration = nil
    }

    /// The configuration this node's disk says it has: the snapshot's (or the bootstrap one),
    /// changed by every configuration entry after it, in order.
    var configurationOnDisk: ClusterConfiguration {
        var configuration = storage.snapshotValue.metadata.configuration
        for entry in storage.log.dropFirst() where entry.kind == .configuration {
            if let change = ConfigurationChange(encoded: entry.data) { configuration = configuration.applying(change) }
        }
        return configuration
    }

    func restoreApplication(from snapshot: Snapshot) {
        appliedIndex = snapshot.metadata.index
        appliedConfiguration = snapshot.metadata.configuration
        appliedData = [:]
        if snapshot.data.count >= 8 {
            appliedHash = snapshot.data.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        } else {
            appliedHash = 0xCBF2_9CE4_8422_2325
        }
        clusterVersion = snapshot.data.count == 12 ? snapshot.data.suffix(4).reduce(0) { $0 << 8 | UInt32($1) } : 1
    }

    /// The application's snapshot: its hash at `appliedIndex`.
    var snapshotData: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: appliedHash >> (56 - 8 * $0)) }
            + (clusterVersion > 1 ? (0..<4).map { UInt8(truncatingIfNeeded: clusterVersion >> (24 - 8 * $0)) } : [])
    }

    /// Writes a snapshot at the applied index and discards the log before it.
    func compact() {
        guard appliedIndex > storage.snapshotValue.metadata.index else { return }
        storage.compact(to: appliedIndex, data: snapshotData, configuration: appliedConfiguration)
    }
}
