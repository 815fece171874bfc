import Logging
import Projections
import Raft
import Replica

/// The chat projections as the replica loop sees them: commands applied to the LMDB tables,
/// their events fanned out to the subscriptions on this node.
public final class ChatMachine: StateMachine {
    /// The tables queries read; replaced as a whole when a leader's snapshot is installed.
    public let current: CurrentState
    /// The live subscriptions the applied events go to.
    public let events: EventHub
    /// Timestamps for the commands this node proposes, bounded by the log's clock as applied
    /// here (`LogClock`).
    let leaderClock = LeaderClock()
    /// Told of each cluster version applied: the transport refuses peers too old for it.
    let versions: PeerVersions
    private let stateDirectory: StateDirectory
    /// The node's data directory, whose `identity` records the cluster version.
    private let dataDirectory: String
    private let logger: Logger

    init(current: CurrentState, stateDirectory: StateDirectory, dataDirectory: String, subscriptionLimits: EventHub.Limits, versions: PeerVersions, logger: Logger) {
        self.current = current
        self.dataDirectory = dataDirectory
        self.stateDirectory = stateDirectory
        self.versions = versions
        self.logger = logger
        events = EventHub(limits: subscriptionLimits)
    }

    public var build: BuildVersions { current.state.build }

    public func undecodableEntry(at index: Index, what: String) -> any MachineRefusal {
        UnknownEntry(index: index, what: what, build: build)
    }

    public func position() throws -> AppliedPosition {
        try current.state.position()
    }

    /// Publishes each entry's events once the whole batch is in the tables, so that a
    /// subscriber who reads on from an event finds what caused it.
    public func apply(_ entries: [CommittedLogEntry]) throws -> [(index: Index, output: Applied)] {
        let results = try current.state.apply(entries.map(CommittedEntry.init))
        for applied in results {
            for event in applied.events {
                if case let .clusterVersionRaised(version) = event {
                    try markClusterVersion(version)
                    logger.notice("the cluster version is \(version) from log entry \(applied.index) on: every member applies it; nodes on builds that do not are refused from now on")
                }
                events.publish(index: applied.index, event: event)
            }
        }
        return results.map { ($0.index, $0) }
    }

    /// A new leader first detaches every subscription: they lived on the previous leader, so
    /// nobody is online until they attach here. A node that stops leading closes its streams,
    /// whose clients move to the new leader.
    public func leadershipChanged(leading: Bool) -> [[UInt8]] {
        guard leading else {
            events.closeAll(.leadershipLost)
            return []
        }
        // The floor of this term's stamps: what earlier leaders stamped. Within the term this
        // node is the only one stamping, so its own stamps carry the floor on (one read an
        // election, none on the write path).
        if let clock = try? current.state.logClock() { leaderClock.observe(logClock: clock) }
        var command = Command()
        command.version = ChatState.commandVersion
        command.kind = .detachAll(DetachAll())
        guard let bytes = try? command.serializedBytes() as [UInt8] else { return [] }
        return [bytes]
    }

    /// The version rose: the transport refuses older builds from now on, and `identity`
    /// records it so that a release before cluster versions refuses this directory.
    private func markClusterVersion(_ version: UInt32) throws {
        versions.clusterVersionApplied(version)
        try DataDirectory.markClusterVersion(version, path: dataDirectory)
    }

    public func sync() throws {
        try current.state.sync()
    }

    public func takeSnapshot(into store: SnapshotStore, termAt: (Index) throws -> Term?) throws -> SnapshotInfo {
        let state = current.state
        // Durable before the log behind it goes: a restart must not find the projections
        // behind the log's new start. (Even then, the snapshot itself would restore them.)
        try state.sync()
        return try store.take(from: state, termAt: termAt)
    }

    public func install(_ snapshot: SnapshotInfo, from store: SnapshotStore) throws {
        let installed: ChatState
        do {
            installed = try stateDirectory.install(snapshotFile: store.dataPath(snapshot), generation: snapshot.name)
        } catch let newer as NewerFormat {
            throw UnknownEntry(index: snapshot.index, what: "a snapshot in projections format \(newer.found)", build: build)
        }
        let version = try installed.clusterVersion()
        guard version <= build.maxClusterVersion else {
            throw UnknownEntry(index: snapshot.index, what: "a snapshot of cluster version \(version)", build: build)
        }
        current.replace(with: installed)
        if version > 1 { try markClusterVersion(version) }
    }

    /// Subscriptions end with the node; the tables are flushed so that a restart replays less.
    public func stopped() {
        events.closeAll(.shuttingDown)
        try? current.state.sync()
    }

    /// A planted bug, for the fault-injection suite only (`PlantedNodeBugs.acknowledgeOnAppend`): the output of a send as soon as the leader appended it, before it
    /// commits, so that a leader which fails loses acknowledged messages. It exists to show
    /// that the checker catches exactly that.
    static func acknowledgeSendOnAppend(_ command: [UInt8], at index: Index) -> Applied? {
        guard case .sendMessage? = (try? Command(serializedBytes: command))?.kind else { return nil }
        return Applied(index: index, outcome: .success(index), events: [], duplicate: false)
    }
}

/// The replica the node runs: its log applied to the chat projections.
public typealias ChatReplica = Replica<ChatMachine>
