import ArgumentParser
import Foundation
import LMDB
import LogStore
import Node
import Projections
import Raft
import ToolSupport

/// `chorus-tools recover`: revives a cluster that lost its majority for good, from the best
/// of its surviving members' data directories. The survivor with the most up-to-date log
/// (last term, then last index) is applied through its last entry, and a new data directory
/// is seeded with that state as the only voter of a new incarnation of the cluster; the
/// operator starts it and adds members. The survivors' directories are only read.
struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revive a cluster that lost its majority for good: seed a one-voter cluster from the best surviving data directory.",
        discussion: """
        Stop every surviving node first. The survivor whose log is the most up to date is applied \
        through its last entry, entries past its commit index included (whether the lost nodes \
        committed them cannot be known; they are kept, and listed). Writes the old cluster \
        acknowledged that no survivor holds are lost: the output says from which index. The new \
        node's data directory is written to --into; nodes of the old cluster are refused by it.
        """
    )
    @Option(help: "The surviving members' data directories (stopped), comma-separated.") var from: String
    @Option(help: "The new node's data directory (created; must not exist or be empty).") var into: String
    @Option(help: "The new node's id (default: the best survivor's).") var node: UInt64?
    @Option(help: "Where peers will reach the new node, host:port.") var peerAddress: String
    @Option(help: "Where clients will reach it, host:port (default: the peer address).") var clientAddress: String?
    @Option(help: "The cluster's id (default: the survivors').") var cluster: String?

    func run() throws {
        let directories = from.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !directories.isEmpty else { throw ValidationError("--from names no data directory") }
        guard let peer = PeerAddress(peerAddress) else { throw ValidationError("--peer-address '\(peerAddress)' is not host:port") }
        var client: PeerAddress?
        if let clientAddress {
            guard let parsed = PeerAddress(clientAddress) else { throw ValidationError("--client-address '\(clientAddress)' is not host:port") }
            client = parsed
        }

        var survivors: [Survivor] = []
        for directory in directories { survivors.append(try Survivor(directory)) }
        for survivor in survivors {
            print("\(survivor.directory): node \(survivor.node) of cluster '\(survivor.cluster)', last index \(survivor.lastIndex) (term \(survivor.lastTerm)), commit \(survivor.commit)")
        }
        let clusters = Set(survivors.map { $0.cluster + ($0.incarnation.map { "~" + $0 } ?? "") })
        guard clusters.count == 1 else { throw ToolError("the directories belong to different clusters (\(clusters.sorted().joined(separator: ", "))): give the survivors of one cluster") }
        let best = survivors.max { ($0.lastTerm, $0.lastIndex) < ($1.lastTerm, $1.lastIndex) }!
        print("the most up-to-date log is node \(best.node)'s (\(best.directory))")

        // Its projections, applied through the last entry it holds, in a scratch copy.
        var into = self.into
        while into.count > 1 && into.hasSuffix("/") { into.removeLast() }
        let scratch = into + ".recovering"
        try? FileManager.default.removeItem(atPath: scratch)
        try FileSystem.makePrivateDirectory(scratch)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if let base = try best.baseProjections() {
            try FileSystem.copy(base, to: scratch + "/data.mdb")
        }
        let uncommitted: [String]
        do {
            let state = try ChatState(directory: scratch)
            let progress = ProgressBar("apply", total: Int(best.lastIndex))
            _ = try Replayer.replay(best.log, into: state, through: best.lastIndex, progress: progress)
            progress.finish()
            try state.sync()
            guard try state.lastApplied() == best.lastIndex else {
                throw ToolError("node \(best.node)'s log could not be applied through index \(best.lastIndex) (the projections stopped at \(try state.lastApplied()))")
            }
            uncommitted = try best.describe(from: best.commit + 1, through: best.lastIndex)
        }

        let id = node ?? best.node
        let cluster = self.cluster ?? best.cluster
        let plan = ClusterSeed.Plan(clusterID: cluster, members: [id: MemberDirectory.Addresses(peer: peer, client: client)])
        let position = try ClusterSeed.write(into, node: id, plan: plan, projections: scratch + "/data.mdb")

        print("recovered: \(into) is node \(id), the only voter of cluster '\(cluster)' (incarnation \(plan.clusterIncarnation)), at index \(position.index) (term \(position.term))")
        if uncommitted.isEmpty {
            print("every entry node \(best.node) held was committed")
        } else {
            print("\(uncommitted.count) entries past node \(best.node)'s commit index \(best.commit) were not known to be committed; they are kept and applied:")
            for line in uncommitted.prefix(50) { print("  \(line)") }
            if uncommitted.count > 50 { print("  … and \(uncommitted.count - 50) more (chorus-tools dump \(best.directory) --from \(best.commit + 51))") }
        }
        print("writes the old cluster acknowledged after index \(best.lastIndex), if any, are lost: no survivor holds them")
        print("next: start node \(id) with --data-dir \(into) --cluster-id \(cluster)~\(plan.clusterIncarnation) (its log names its members; no --join), then add members one at a time (chorus-tools member add … --promote), each started with an empty data directory, --join and --cluster-id \(cluster)~\(plan.clusterIncarnation); nodes of the old cluster are refused, and give new members ids the old cluster never used")
    }
}

/// A stopped survivor's data directory, locked while it is read.
struct Survivor {
    let directory: String
    let lock: DirectoryLock
    let cluster: String
    /// The incarnation of the cluster the directory belonged to (nil: the first).
    let incarnation: String?
    let node: UInt64
    let log: LogStore
    let lastIndex: UInt64
    let lastTerm: UInt64
    let commit: UInt64

    init(_ directory: String) throws {
        self.directory = directory
        guard let identity = FileManager.default.contents(atPath: directory + "/identity") else {
            throw ToolError("\(directory) is not a Chorus data directory (no identity file)")
        }
        do {
            lock = try DirectoryLock(directory: directory)
        } catch is DirectoryLock.InUse {
            throw ToolError("\(directory) is in use by a running node: stop every survivor first")
        }
        if UncleanStop.check(directory) != nil {
            throw ToolError("the last run of the node on \(directory) did not stop cleanly: its projections may be damaged. Start it once (it rebuilds them; it needs no majority for that), stop it, then recover")
        }
        let lines = String(decoding: identity, as: UTF8.self).split(separator: "\n")
        cluster = lines.first { $0.hasPrefix("cluster=") }.map { String($0.dropFirst("cluster=".count)) } ?? ""
        node = lines.first { $0.hasPrefix("node=") }.flatMap { UInt64($0.dropFirst("node=".count)) } ?? 0
        incarnation = DataDirectory.clusterIncarnation(path: directory)
        log = try LogStore(directory: directory + "/log", readOnly: true)
        let problems = try log.problems(maxValue: MessageLimits().maxValue, entryKinds: BuildVersions.entryKinds)
        guard problems.isEmpty else { throw ToolError("the log in \(directory) is unsound:\n  " + problems.joined(separator: "\n  ")) }
        lastIndex = try log.lastIndex()
        lastTerm = try log.term(at: lastIndex) ?? 0
        commit = min(try log.hardState().commit, lastIndex)
        guard lastIndex > 0 else { throw ToolError("the log in \(directory) holds nothing") }
    }

    /// The data file to apply the log onto: the current projections, or the snapshot the log
    /// starts after when they are behind it (checked against its SHA-256); nil to start from
    /// empty projections (there are none, and the log holds every entry from the first).
    func baseProjections() throws -> String? {
        let state = StateDirectory(directory: directory + "/state")
        let current = state.currentPath + "/data.mdb"
        if !FileSystem.exists(current), try log.firstIndex() <= 1, try log.snapshotMetadata().index == 0 { return nil }
        let applied = try ChatState(directory: state.currentPath, readOnly: true).lastApplied()
        if applied + 1 >= (try log.firstIndex()) { return current }
        let snapshot = try log.snapshotMetadata()
        let snapshots = try SnapshotStore(directory: directory + "/snapshots")
        guard let info = snapshots.find(index: snapshot.index, term: snapshot.term) else {
            throw ToolError("the projections in \(directory) are at index \(applied), the log starts after \(snapshot.index), and the snapshot it names is not in \(directory)/snapshots")
        }
        return try snapshots.verifiedDataPath(info)
    }

    /// One line per entry in `from...through`: index, term, and what it is.
    func describe(from: UInt64, through: UInt64) throws -> [String] {
        guard from <= through else { return [] }
        return try log.entries(from: from, through: through).map { entry in
            let what: String
            if entry.kind == 1 {
                what = "a membership change"
            } else if entry.payload.isEmpty {
                what = "a leader's first entry (no-op)"
            } else if let command = try? Command(serializedBytes: entry.payload), let kind = command.kind {
                what = (Mirror(reflecting: kind).children.first?.label ?? "\(kind)") + " from client \(command.clientID) #\(command.sequence)"
            } else {
                what = "an undecodable command"
            }
            return "index \(entry.index) (term \(entry.term)): \(what)"
        }
    }
}
