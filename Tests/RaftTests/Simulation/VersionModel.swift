import Raft

/// Cluster versions in the simulation: each server runs a build that applies cluster versions
/// up to some number, says so on every message (as the node's peer batches do), and the
/// application knows three kinds of entries: plain ones, `v<N>:…` (a command of cluster version
/// N) and `cv:<N>` (raising the cluster version). The rules of the node, modelled:
///
/// - the leader raises the version by `ClusterVersionRule` over what it heard from each member
///   since that member's last restart;
/// - above version 1, a server sends entries and snapshots only to peers heard to apply the
///   version, and refuses every message from a build that does not;
/// - a build meets an entry beyond it and stops before applying its batch; a *legacy* build
///   (the release before cluster versions) does not know the rules: it applies any versioned
///   entry as a refusal, which is exactly the divergence the rules exist to prevent.
final class VersionModel {
    /// What each server's current process applies.
    var builds: [NodeID: UInt32]
    /// Servers running the release before cluster versions.
    var legacy: Set<NodeID> = []
    /// `heard[receiver][sender]`: what the sender's build said, since the sender last started.
    var heard: [NodeID: [NodeID: UInt32]] = [:]
    /// Servers that stopped at an entry they do not know, and at which index.
    var halted: [NodeID: Index] = [:]
    /// Servers started on an older build after the version rose past it: the only ones that
    /// may be refused or stop.
    var downgradedAfterRaise: Set<NodeID> = []
    /// The last raise proposed: (leader, index, term).
    var pendingRaise: (NodeID, Index, Term)?

    /// Planted bugs, for `VersionSkewScenarios` to show the checks catch each.
    var plantedIgnoredMember: NodeID?
    var plantedNoFilter = false

    init(builds: [NodeID: UInt32]) {
        self.builds = builds
    }

    enum Kind: Equatable {
        case plain
        case versioned(UInt32)
        case raise(UInt32)
    }

    static func versioned(_ version: UInt32, _ n: Int) -> [UInt8] { Array("v\(version):\(n)".utf8) }
    static func raise(_ version: UInt32) -> [UInt8] { Array("cv:\(version)".utf8) }

    static func kind(_ data: [UInt8]) -> Kind {
        let text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("cv:"), let v = UInt32(text.dropFirst(3)) { return .raise(v) }
        if text.hasPrefix("v"), let colon = text.firstIndex(of: ":"), let v = UInt32(text[text.index(after: text.startIndex)..<colon]) { return .versioned(v) }
        return .plain
    }

    /// Whether `node` stops at `entry` rather than apply it (a build that knows the rules).
    func stops(_ node: SimNode, at entry: Entry) -> Bool {
        guard !legacy.contains(node.id), entry.kind == .normal else { return false }
        let build = builds[node.id] ?? .max
        switch Self.kind(entry.data) {
        case .plain: return false
        case let .versioned(v), let .raise(v): return v > build
        }
    }

    /// What applying `entry` does to the application, as bytes folded into its hash: the same
    /// on every server that applies it correctly.
    func apply(_ node: SimNode, _ entry: Entry) -> [UInt8] {
        guard entry.kind == .normal else { return [] }
        if legacy.contains(node.id) {
            // The previous release knows no versioned entry: each is an empty command to it.
            return Self.kind(entry.data) == .plain ? [] : [0xEE]
        }
        switch Self.kind(entry.data) {
        case .plain: return []
        case let .raise(v):
            node.clusterVersion = max(node.clusterVersion, v)
            return [0x01]
        case let .versioned(v):
            // A command of a version the log does not run yet: refused alike everywhere.
            return v > node.clusterVersion ? [0x02] : [0x03]
        }
    }

    /// Whether the network carries `m` (the sender's filter), given the sender's applied version.
    func sends(_ m: Message, from sender: SimNode) -> Bool {
        guard !plantedNoFilter, sender.clusterVersion > 1 else { return true }
        let carriesEntries: Bool
        switch m.kind {
        case let .append(_, _, entries, _): carriesEntries = !entries.isEmpty
        case .snapshot: carriesEntries = true
        default: carriesEntries = false
        }
        guard carriesEntries else { return true }
        return (heard[m.from]?[m.to] ?? 0) >= sender.clusterVersion
    }

    /// Whether `target` takes a message from a process whose build applies `build` (what the
    /// message's batch said); records what it heard when it does.
    func accepts(_ target: SimNode, from sender: NodeID, build: UInt32) -> Bool {
        guard plantedNoFilter || build >= target.clusterVersion else { return false }
        heard[target.id, default: [:]][sender] = build
        return true
    }

    /// A server restarted: what it said before is forgotten (its streams closed and reopen).
    func restarted(_ id: NodeID) {
        for key in heard.keys { heard[key]![id] = nil }
    }

    /// The leader's finalizer: proposes a raise when the rule allows one.
    func finalize(_ sim: Simulation) {
        guard let leader = sim.leader(), let raft = sim.node(leader).raft else { return }
        let node = sim.node(leader)
        if let (proposer, index, term) = pendingRaise, proposer == leader, raft.term == term, index > node.appliedIndex { return }
        let members = raft.configuration.members.filter { $0 != plantedIgnoredMember }
        guard let next = ClusterVersionRule.next(committed: node.clusterVersion, members: members, applies: { member in
            member == leader ? self.builds[leader] : self.heard[leader]?[member]
        }) else { return }
        if sim.node(leader).raft!.propose([Self.raise(next)]) {
            pendingRaise = (leader, sim.node(leader).raft!.lastIndex, raft.term)
        }
    }

    /// Every step: the version never rises past a member that runs an older build, unless the
    /// member was downgraded after it rose; only such members stop.
    func check(_ sim: Simulation) throws {
        for id in sim.ids {
            let node = sim.node(id)
            for other in sim.ids where node.clusterVersion > (builds[other] ?? .max) && !downgradedAfterRaise.contains(other) && !sim.node(id).halted {
                throw sim.checker.fail("node \(id) applied cluster version \(node.clusterVersion) while node \(other) runs a build that applies \(builds[other]!)")
            }
        }
        for (id, index) in halted where !downgradedAfterRaise.contains(id) {
            throw sim.checker.fail("node \(id) stopped at entry \(index) although it was never downgraded")
        }
    }
}
