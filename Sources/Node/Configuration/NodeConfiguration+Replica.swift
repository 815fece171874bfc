import Replica
extension NodeConfiguration {
    /// The replica loop's part of the configuration.
    public var replicaOptions: ReplicaOptions {
        var options = ReplicaOptions()
        options.tickInterval = tickInterval
        options.electionTicks = electionTicks
        options.proposalTimeout = proposalTimeout
        options.snapshotInterval = snapshotInterval
        options.snapshotTrailingEntries = snapshotTrailingEntries
        options.maxPendingProposals = maxPendingProposals
        options.maxPendingProposalBytes = maxPendingProposalBytes
        options.maxPendingReads = maxPendingReads
        options.minimumFreeSpace = minimumFreeSpace
        options.watchedDirectories = [dataDirectory + "/log", dataDirectory + "/state"]
        return options
    }
}
