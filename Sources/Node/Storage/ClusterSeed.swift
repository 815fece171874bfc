import Foundation
import LMDB
import LogStore
import Projections
import Raft
import Replica

/// A data directory for a node of a cluster that starts from a copy of another cluster's
/// projections (a backup, or a survivor's state after the majority was lost): its log starts
/// after the copy's index with a snapshot of it whose configuration names the new members,
/// and its identity records a new cluster incarnation, so nodes of the cluster as it was are
/// refused if they come back. Every node of the new cluster is seeded with the same copy and
/// the same incarnation; they elect a leader when they start, as after a full restart.
public enum ClusterSeed {
    /// Where the copy stands, and what the new cluster is.
    public struct Plan: Sendable {
        public var clusterID: String
        public var clusterIncarnation: String
        /// The new members (all voters) and their addresses.
        public var members: [NodeID: MemberDirectory.Addresses]

        public init(clusterID: String, clusterIncarnation: String = ClusterSeed.newIncarnation(), members: [NodeID: MemberDirectory.Addresses]) {
            self.clusterID = clusterID
            self.clusterIncarnation = clusterIncarnation
            self.members = members
        }

        public var configuration: ClusterConfiguration {
            ClusterConfiguration(voters: Set(members.keys), contexts: members.mapValues(\.context))
        }
    }

    /// A random incarnation, 16 hex digits.
    public static func newIncarnation() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Writes the data directory of node `node` of `plan` at `directory` (which must not
    /// exist or be empty) from `projections`, the data file of a copy of the projections.
    /// Returns the position the node starts at.
    @discardableResult
    public static func write(_ directory: String, node: NodeID, plan: Plan, projections: String) throws -> AppliedPosition {
        guard plan.members[node] != nil else { throw ConfigurationError("node \(node) is not one of the new members \(plan.members.keys.sorted())") }
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: directory), !existing.isEmpty {
            throw ConfigurationError("\(directory) is not empty: a new node's data directory must be")
        }
        try FileSystem.makePrivateDirectory(directory)
        let configuration = plan.configuration

        // The projections: the copy, recording the new members, as the current generation.
        let generation = "seeded"
        try FileSystem.makePrivateDirectory(directory + "/state/" + generation)
        try FileSystem.copy(projections, to: directory + "/state/\(generation)/data.mdb")
        let position: AppliedPosition
        let clusterVersion: UInt32
        do {
            let state = try ChatState(directory: directory + "/state/" + generation)
            let copied = try state.position()
            guard copied.index > 0 else { throw ConfigurationError("the copy of the projections holds nothing (no entry applied)") }
            try state.seed(configuration: configuration.encoded())
            try state.sync()
            position = try state.position()
            clusterVersion = try state.clusterVersion()
            // A snapshot of them, which the log records and followers are sent.
            let snapshots = try SnapshotStore(directory: directory + "/snapshots")
            _ = try snapshots.take(from: state, termAt: { _ in copied.term })
        }
        try FileSystem.writeAtomically(Array(generation.utf8), to: directory + "/state/CURRENT")

        // The log: nothing but that snapshot, the term it was taken in, committed through it.
        let log = try LogStore(directory: directory + "/log")
        try log.save(hardState: StoredHardState(term: position.term, vote: 0, commit: position.index), entries: [],
                     snapshot: StoredSnapshot(index: position.index, term: position.term, configuration: configuration.encoded()))

        // The identity last: a directory without one is not a node's yet.
        var identity = "cluster=\(plan.clusterID)\nnode=\(node)\nincarnation=\(UInt64.random(in: 1...UInt64.max))\n"
        identity += DataDirectory.clusterIncarnationPrefix + plan.clusterIncarnation + "\n"
        if clusterVersion > 1 { identity += DataDirectory.clusterVersionPrefix + "\(clusterVersion)\n" }
        try DataDirectory.writeDurably(directory + "/identity", identity)
        try FileSystem.sync(directory)
        return position
    }
}
