extension RaftCore {
    /// Proposes adding or removing one server. Refused (false) unless this is the leader, an
    /// entry of its own term has committed, and the previous change has committed: one change
    /// at a time keeps old and new majorities overlapping.
    ///
    /// The rule about the leader's own term is the Raft dissertation's fix (§4.1, erratum of
    /// 2015) to single-server changes. A configuration takes effect when appended, so an
    /// earlier leader may have appended a change that only a minority holds; a new leader that
    /// appended a change of its own before committing anything would have two configurations
    /// in play that differ by two servers, whose majorities need not overlap: the earlier
    /// leader can win again under its configuration and overwrite what the new one committed.
    /// Once an entry of this term commits, no earlier leader's uncommitted entry can win.
    @discardableResult
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) -> Bool {
        guard role == .leader, transferee == nil, pendingConfigurationIndex <= log.committed,
              committedInCurrentTerm || planted(.configurationChangeBeforeTermCommits) else { return false }
        appendEntries([Entry(index: 0, term: 0, kind: .configuration, data: change.encoded())])
        pendingConfigurationIndex = log.lastIndex
        broadcastAppend()
        return true
    }

    /// A configuration takes effect as soon as its entry is in the log (Raft dissertation
    /// §4.1), and reverts if that entry is overwritten; so every append that adds a
    /// configuration entry or cuts below the current one recomputes it.
    mutating func configurationMayHaveChanged(appended entries: [Entry]) {
        guard let first = entries.first else { return }
        guard first.index <= configurationIndex || entries.contains(where: { $0.kind == .configuration }) else { return }
        recomputeConfiguration(from: log.lastIndex)
    }

    /// The configuration of the newest configuration entry at or below `index`, or of the
    /// snapshot when there is none.
    mutating func recomputeConfiguration(from index: Index) {
        var next = (try? log.storage.snapshot().metadata.configuration) ?? configurationBeforeLog
        var nextIndex: Index = 0
        if let snapshot = log.unstable.snapshot {
            next = snapshot.metadata.configuration
            nextIndex = snapshot.metadata.index
        } else if let snapshot = try? log.storage.snapshot() {
            nextIndex = snapshot.metadata.index
        }
        // Entries kept behind the snapshot (a trailing window) are already part of its
        // configuration: the scan stops at the snapshot.
        var i = index
        while i >= log.firstIndex && i > nextIndex {
            if let entry = try? log.slice(i, i + 1, maxBytes: .max).first, entry.kind == .configuration {
                if let change = ConfigurationChange(encoded: entry.data) {
                    // Rebuild from the entry's predecessor configuration.
                    var previous = self
                    previous.recomputeConfiguration(from: i - 1)
                    next = previous.configuration.applying(change)
                    nextIndex = i
                }
                break
            }
            i -= 1
        }
        apply(configuration: next, at: nextIndex)
    }

    /// The configuration the log's entries apply to when storage offers no snapshot: the one
    /// storage started from while nothing was compacted. (A storage that compacted and cannot
    /// offer its snapshot for the moment has no base to give; the current configuration is the
    /// best there is then. Neither store does that today: both throw only when none exists.)
    private var configurationBeforeLog: ClusterConfiguration {
        guard log.storage.firstIndex() <= 1, !planted(.recomputeFromCurrentConfiguration) else { return configuration }
        return baseConfiguration
    }

    mutating func apply(configuration next: ClusterConfiguration, at index: Index) {
        configurationIndex = index
        guard next != configuration else { return }
        configuration = next
        configurationVersion &+= 1
        for member in next.members where progress[member] == nil {
            var p = Progress(next: log.lastIndex + 1, window: options.maxInflightMessages)
            if member == id { p.match = log.stableIndex }
            p.recentActive = true
            progress[member] = p
        }
        for member in progress.keys where !next.members.contains(member) && member != id {
            progress[member] = nil
        }
        if let transferee, !next.voters.contains(transferee) {
            self.transferee = nil
        }
        if role == .leader {
            // A smaller majority may already hold more entries.
            if maybeCommit() { broadcastAppend() }
            if next.voters == [id] { serveAlone() }
        }
    }

    /// Once a configuration that removes the leader commits, the leader steps down.
    mutating func committedConfiguration() {
        guard role == .leader, configurationIndex <= log.committed, !configuration.voters.contains(id) else { return }
        becomeFollower(term: term, leader: 0)
    }
}
