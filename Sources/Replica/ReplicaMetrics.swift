import CoreMetrics
import Metrics
import Raft
import Synchronization

/// What the replica loop measures: its Raft state, its log writes and applies, what became of
/// proposals, and snapshots. Made from any swift-metrics factory: the node's is its own
/// Prometheus registry (`NodeMetrics.replica`); tests and simulations use the default, which
/// records nothing.
///
/// Updating costs an atomic store or add (gauges, counters) or a short lock (histograms).
public final class ReplicaMetrics: Sendable {
    let factory: any MetricsFactory

    let term, commitIndex, appliedIndex, lastIndex, leaderID: Gauge
    let roles: [Role: Gauge]
    let leaderChanges: Counter
    /// Times this follower heard its leader's connection close and campaigned early.
    let leaderConnectionsLost: Counter
    let persistedEntries: Recorder
    let logWrite: Timer
    let applyDuration: Timer
    let appliedEntries: Recorder

    // Proposals, by what became of them.
    let proposalsCommitted, proposalsNotLeader, proposalsLeadershipLost, proposalsTimedOut, proposalsStopped: Counter
    /// A follower's reads whose leader was asked again (the request or its answer was lost).
    let readsAskedAgain: Counter

    // Snapshots: taken here, sent to a follower, installed from the leader.
    package enum SnapshotEvent: String, CaseIterable { case taken, sent, installed }
    private let snapshots: [SnapshotEvent: (count: Counter, bytes: Recorder, duration: Timer)]

    // Peers: one gauge pair per follower, made as followers appear (on the Raft loop only).
    private let peerGauges = Mutex<[NodeID: (lag: Gauge, inflight: Gauge)]>([:])

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        func gauge(_ name: String, _ labels: [(String, String)] = []) -> Gauge { Gauge(label: name, dimensions: labels, factory: factory) }
        func counter(_ name: String, _ labels: [(String, String)] = []) -> Counter { Counter(label: name, dimensions: labels, factory: factory) }
        func histogram(_ name: String, _ labels: [(String, String)] = []) -> Recorder { Recorder(label: name, dimensions: labels, aggregate: true, factory: factory) }
        func timer(_ name: String, _ labels: [(String, String)] = []) -> Timer { Timer(label: name, dimensions: labels, factory: factory) }

        term = gauge("chorus_raft_term")
        commitIndex = gauge("chorus_raft_commit_index")
        appliedIndex = gauge("chorus_raft_applied_index")
        lastIndex = gauge("chorus_raft_last_index")
        leaderID = gauge("chorus_raft_leader_id")
        roles = Dictionary(uniqueKeysWithValues: [Role.follower, .preCandidate, .candidate, .leader].map { role in
            (role, gauge("chorus_raft_role", [("role", role == .preCandidate ? "pre_candidate" : "\(role)")]))
        })
        leaderChanges = counter("chorus_raft_leader_changes_total")
        leaderConnectionsLost = counter("chorus_raft_leader_connection_lost_total")
        persistedEntries = histogram("chorus_raft_persisted_entries")
        logWrite = timer("chorus_log_write_seconds")
        applyDuration = timer("chorus_apply_seconds")
        appliedEntries = histogram("chorus_apply_batch_entries")

        proposalsCommitted = counter("chorus_proposals_total", [("outcome", "committed")])
        proposalsNotLeader = counter("chorus_proposals_total", [("outcome", "not_leader")])
        proposalsLeadershipLost = counter("chorus_proposals_total", [("outcome", "leadership_lost")])
        proposalsTimedOut = counter("chorus_proposals_total", [("outcome", "timed_out")])
        proposalsStopped = counter("chorus_proposals_total", [("outcome", "stopped")])
        readsAskedAgain = counter("chorus_reads_asked_again_total")

        snapshots = Dictionary(uniqueKeysWithValues: SnapshotEvent.allCases.map { event in
            let labels = [("event", event.rawValue)]
            return (event, (counter("chorus_snapshots_total", labels), histogram("chorus_snapshot_bytes", labels), timer("chorus_snapshot_duration_seconds", labels)))
        })
        roles[.follower]?.record(1)
    }

    private let lastLeader = Atomic<UInt64>(0)

    /// The loop's view after a turn that changed something.
    func recordProgress(term: Term, commit: Index, applied: Index, last: Index) {
        self.term.record(Double(term))
        commitIndex.record(Double(commit))
        appliedIndex.record(Double(applied))
        lastIndex.record(Double(last))
    }

    func recordRole(_ role: Role, leader: NodeID) {
        for (each, gauge) in roles { gauge.record(each == role ? 1 : 0) }
        leaderID.record(Double(leader))
        // Each leader seen, as etcd counts them: a new term's leader after an election or a
        // transfer (an interregnum with no leader in between counts once).
        if lastLeader.exchange(leader, ordering: .relaxed) != leader && leader != 0 { leaderChanges.increment() }
    }

    /// The leader's view of each follower: entries behind its last index, and appends sent
    /// and not yet answered. Followers' gauges go to zero when this node stops leading.
    func recordPeers(_ peers: [(id: NodeID, lag: UInt64, inflight: Int)]) {
        peerGauges.withLock { gauges in
            let present = Set(peers.map(\.id))
            for (id, pair) in gauges where !present.contains(id) {
                pair.lag.destroy()
                pair.inflight.destroy()
                gauges[id] = nil
            }
            for peer in peers {
                let pair: (lag: Gauge, inflight: Gauge)
                if let known = gauges[peer.id] {
                    pair = known
                } else {
                    let labels = [("peer", "\(peer.id)")]
                    pair = (Gauge(label: "chorus_peer_lag_entries", dimensions: labels, factory: factory),
                            Gauge(label: "chorus_peer_inflight_appends", dimensions: labels, factory: factory))
                    gauges[peer.id] = pair
                }
                pair.lag.record(Double(peer.lag))
                pair.inflight.record(Double(peer.inflight))
            }
        }
    }

    package func recordSnapshot(_ event: SnapshotEvent, bytes: UInt64, duration: Duration) {
        guard let metrics = snapshots[event] else { return }
        metrics.count.increment()
        metrics.bytes.record(bytes)
        metrics.duration.record(duration: duration)
    }
}
