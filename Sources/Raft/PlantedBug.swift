/// Bugs this core once had (or could easily have), which tests plant back to show that the
/// simulation and its checker would find them. Planting needs `RaftOptions.plantedBugs`,
/// which only test builds have (`CHORUS_TESTING`, defined for debug builds of this package):
/// a release binary has no way to be told to be wrong, and in it `planted(_:)` is a constant
/// `false` the optimizer removes.
public enum PlantedBug: Hashable, Sendable, CaseIterable {
    /// A new leader may append a configuration entry before an entry of its own term has
    /// committed (the single-server change bug of raft-dev, 2015): a configuration another
    /// leader of an earlier term appended elsewhere can then win an election and overwrite
    /// what the new configuration committed.
    case configurationChangeBeforeTermCommits
    /// A follower names the reads it forwards with a counter that starts again in every
    /// process, so an answer to a read sent before a restart confirms a new read under the
    /// same name at an older index: a stale read.
    case forwardedReadNamesRepeat
    /// Installing a snapshot changes the configuration without counting it in
    /// `configurationVersion`, so a driver that watches the version never refreshes its peers.
    case restoreKeepsConfigurationVersion
    /// With no snapshot in storage, recomputing the configuration starts from the current one
    /// instead of the bootstrap one, so a configuration entry that was overwritten is kept.
    case recomputeFromCurrentConfiguration
    /// A ready hands the application every stable entry to apply, committed or not: a node
    /// applies what a new leader may yet overwrite.
    case applyBeforeCommit
}

extension RaftCore {
    /// Whether the test that built this core planted `bug`; always false outside test builds.
    @inline(__always)
    func planted(_ bug: PlantedBug) -> Bool {
        #if CHORUS_TESTING
        options.plantedBugs.contains(bug)
        #else
        false
        #endif
    }

    /// The commit rule's quorum: a majority, unless a test broke it on purpose.
    var brokenCommitQuorum: Int? {
        #if CHORUS_TESTING
        options.unsafeCommitQuorum
        #else
        nil
        #endif
    }
}
