import Raft
import Testing

/// A core's configuration follows its log and snapshots exactly, and every change of it is
/// counted in `configurationVersion` (the node refreshes its member directory and peer links
/// when the count moves). With either bug planted back the same sequence goes wrong.
@Suite struct ConfigurationLivenessTests {
    static func follower(_ storage: MemoryStorage, planting bugs: Set<PlantedBug> = []) -> RaftCore {
        var options = RaftOptions(id: 2, seed: 1)
        options.plantedBugs = bugs
        var core = RaftCore(storage: storage, options: options)
        core.step(Message(from: 1, to: 2, term: 1, kind: .heartbeat(commit: 0, context: nil)))
        SingleCore.settle(&core, storage)
        return core
    }

    /// Node 2 of 1–3 receives a snapshot whose configuration added node 4 (the change is
    /// behind the snapshot, so no entry of its log carries it).
    func installSnapshotAddingANode(planting bugs: Set<PlantedBug>) -> (before: UInt64, after: RaftCore) {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var core = Self.follower(storage, planting: bugs)
        let before = core.configurationVersion
        let next = ClusterConfiguration(voters: [1, 2, 3, 4])
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 20, term: 1, configuration: next), data: [1])
        core.step(Message(from: 1, to: 2, term: 1, kind: .snapshot(snapshot)))
        SingleCore.settle(&core, storage)
        return (before, core)
    }

    @Test func aSnapshotsConfigurationIsCountedAsAChange() {
        let (before, core) = installSnapshotAddingANode(planting: [])
        #expect(core.configuration.voters == [1, 2, 3, 4])
        #expect(core.configurationVersion == before + 1)
    }

    @Test func plantedBackASnapshotsConfigurationGoesUncounted() {
        let (before, core) = installSnapshotAddingANode(planting: [.restoreKeepsConfigurationVersion])
        #expect(core.configuration.voters == [1, 2, 3, 4])
        #expect(core.configurationVersion == before, "the planted bug no longer reproduces")
    }

    /// Node 2's storage holds no snapshot. Leader 1 (term 1) sends it "add learner 4" at
    /// index 1, which nobody else got; leader 3 of term 2 overwrites index 1 with its no-op.
    /// The configuration must be the bootstrap one again, without the learner.
    func overwriteAnAddedLearner(planting bugs: Set<PlantedBug>) -> RaftCore {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var core = Self.follower(storage, planting: bugs)
        let add = Entry(index: 1, term: 1, kind: .configuration, data: ConfigurationChange(.addLearner, 4).encoded())
        core.step(Message(from: 1, to: 2, term: 1, kind: .append(prevIndex: 0, prevTerm: 0, entries: [add], commit: 0)))
        SingleCore.settle(&core, storage)
        #expect(core.configuration.learners == [4])
        let version = core.configurationVersion
        let noop = Entry(index: 1, term: 2)
        core.step(Message(from: 3, to: 2, term: 2, kind: .append(prevIndex: 0, prevTerm: 0, entries: [noop], commit: 0)))
        SingleCore.settle(&core, storage)
        #expect(core.term(at: 1) == 2)
        if bugs.isEmpty { #expect(core.configurationVersion == version + 1) }
        return core
    }

    @Test func anOverwrittenChangeLeavesTheBootstrapConfiguration() {
        let core = overwriteAnAddedLearner(planting: [])
        #expect(core.configuration == ClusterConfiguration(voters: [1, 2, 3]))
    }

    @Test func plantedBackAnOverwrittenLearnerStays() {
        let core = overwriteAnAddedLearner(planting: [.recomputeFromCurrentConfiguration])
        #expect(core.configuration.learners == [4], "the planted bug no longer reproduces")
    }

    /// A leader that lost its place and won again in a later term knows nothing yet of who
    /// answered it: members heard only in its earlier term are not "recently active" (the
    /// guard on removing a member relies on that).
    @Test func aReelectedLeaderForgetsWhoWasActiveInItsEarlierTerm() {
        var (core, storage) = SingleCore.leader(seed: 1)
        core.step(Message(from: 3, to: 1, term: 1, kind: .appendResponse(index: 1, reject: false, hintIndex: 0, hintTerm: 0)))
        for _ in 0..<10 { core.tick() }
        SingleCore.settle(&core, storage)
        #expect(core.isLeader && core.isRecentlyActive(2) && core.isRecentlyActive(3))

        // Deposed by term 2 (node 3 campaigns), then elected in term 3 with node 2's vote.
        core.step(Message(from: 3, to: 1, term: 2, kind: .heartbeat(commit: 1, context: nil)))
        #expect(!core.isLeader)
        core.campaign()
        SingleCore.settle(&core, storage)
        core.step(Message(from: 2, to: 1, term: 3, kind: .voteResponse(reject: false)))
        SingleCore.settle(&core, storage)
        #expect(core.isLeader && core.term == 3)
        #expect(!core.isRecentlyActive(3), "node 3 was heard only in term 1")
        #expect(!core.isRecentlyActive(2))
    }
}
