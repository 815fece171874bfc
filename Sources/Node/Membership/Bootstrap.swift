import LogStore
import Logging
import Raft

/// How a data directory gets its first configuration.
///
/// A new cluster writes its members as the first entries of every node's log: one `addVoter`
/// per member, with the member's addresses, at term 1, committed (etcd's bootstrap does the
/// same). Every node writes the same entries, so their logs agree; from then on membership
/// comes only from the log and snapshots, and the `--peer` flags are not consulted for it. A
/// node started with `--join` writes nothing: it waits to be added, and learns the
/// configuration from the leader.
enum Bootstrap {
    /// Prepares `log` for a first start; returns the configuration the log starts from when it
    /// holds none (empty, but for a directory written before configurations were logged).
    static func prepare(_ log: LogStore, configuration: NodeConfiguration, logger: Logger) throws -> ClusterConfiguration {
        let snapshot = try log.snapshotMetadata()
        let last = try log.lastIndex()
        if last == 0 && snapshot.index == 0 {
            if configuration.join {
                logger.notice("node \(configuration.id) starts empty and waits to be added to cluster '\(configuration.clusterID)' (chorus-tools member add \(configuration.id) …)")
                return ClusterConfiguration()
            }
            // Only a new cluster takes its members from the flags, so only then do they matter.
            guard configuration.members.count % 2 == 1 else {
                throw ConfigurationError("a cluster of \(configuration.members.count) members tolerates no more failures than one of \(configuration.members.count - 1); use an odd number")
            }
            let addresses = configuration.flagAddresses
            let entries = addresses.keys.sorted().enumerated().map { offset, id in
                LogEntry(index: UInt64(offset + 1), term: 1, kind: Entry.Kind.configuration.rawValue,
                         payload: ConfigurationChange(.addVoter, id, context: addresses[id]!.context).encoded())
            }
            try log.save(hardState: StoredHardState(term: 1, vote: 0, commit: UInt64(entries.count)), entries: entries)
            logger.info("node \(configuration.id) bootstrapped cluster '\(configuration.clusterID)' with voters \(addresses.keys.sorted())")
            return ClusterConfiguration()
        }
        if snapshot.configuration.isEmpty, snapshot.index == 0, let first = try log.entry(at: 1), first.kind != Entry.Kind.configuration.rawValue {
            // Written before configurations were logged: the flags are all there is.
            logger.warning("the log of node \(configuration.id) holds no configuration (an older data directory): the members are taken from --peer")
            return ClusterConfiguration(voters: Set(configuration.members.keys))
        }
        return ClusterConfiguration()
    }

    /// Says so when the flags name other members or addresses than the log: the log wins.
    static func compare(_ configuration: NodeConfiguration, with logged: ClusterConfiguration, logger: Logger) {
        guard !configuration.join || !logged.isEmpty else { return }
        let flagged = Set(configuration.members.keys)
        if flagged != logged.voters.union(logged.learners) {
            logger.warning("--peer names members \(flagged.sorted()), but the cluster's configuration (from its log) has voters \(logged.sortedVoters) and learners \(logged.learners.sorted()); the flags are ignored for membership")
        }
        for member in logged.members {
            guard let context = logged.contexts[member], let logAddress = MemberDirectory.Addresses(context: context),
                  let flagAddress = configuration.members[member], flagAddress != logAddress.peer
            else { continue }
            logger.warning("--peer gives node \(member) the address \(flagAddress), but the cluster's configuration has \(logAddress.peer); using \(logAddress.peer)")
        }
    }
}
