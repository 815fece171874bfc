import Foundation

/// What the replica loop is told by the node: its timing, its limits and its snapshots. The
/// node derives them from its configuration (`NodeConfiguration.replicaOptions`); a test or a
/// simulation states them directly.
public struct ReplicaOptions: Sendable {
    /// One Raft tick, and the election timeout in ticks (the core's `RaftOptions` carry the
    /// same): a follower's read unconfirmed for two election timeouts is asked again.
    public var tickInterval: Duration = .milliseconds(10)
    public var electionTicks = 15
    /// How long a proposal or a read waits for its answer before it fails as timed out.
    public var proposalTimeout: Duration = .seconds(5)
    /// Entries applied between automatic snapshots (0: none), and the log kept behind each.
    public var snapshotInterval: UInt64 = 20_000
    public var snapshotTrailingEntries: UInt64 = 5_000
    /// Proposals admitted and not yet answered, and their bytes; reads likewise.
    public var maxPendingProposals = 20_000
    public var maxPendingProposalBytes = 64 << 20
    public var maxPendingReads = 20_000
    /// The node stops once a file system holding one of `watchedDirectories` has less free
    /// space than this (see `Replica.Loop.checkFreeSpace`).
    public var minimumFreeSpace: UInt64 = 64 << 20
    public var watchedDirectories: [String] = []

    public init() {}
}
