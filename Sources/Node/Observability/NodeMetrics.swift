import CoreMetrics
import Metrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Raft
import Synchronization

/// Everything a node measures, as swift-metrics objects backed by this node's own Prometheus
/// registry (not the process-wide `MetricsSystem`, so nodes in one test process keep apart).
/// Names follow Prometheus conventions: `chorus_` first, base units (seconds, bytes),
/// `_total` on counters.
///
/// Updating costs an atomic store or add (gauges, counters) or a short lock (histograms): the
/// Raft loop updates what it knows as it goes, and what is cheaper to read than to track
/// (online users, inbox depth, memory) is read at scrape time by `refresh`.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    // Raft
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
    /// Client requests refused for want of a live session, and requests refused by a
    /// per-address limit.
    let unauthenticatedRequests, rateLimited: Counter
    /// Detaches proposed again because the leader was busy, and given up after every attempt.
    let detachesRetried, detachesDropped: Counter

    // Snapshots: taken here, sent to a follower, installed from the leader.
    enum SnapshotEvent: String, CaseIterable { case taken, sent, installed }
    private let snapshots: [SnapshotEvent: (count: Counter, bytes: Recorder, duration: Timer)]

    // Peers: one gauge pair per follower, made as followers appear (on the Raft loop only).
    private let peerGauges = Mutex<[NodeID: (lag: Gauge, inflight: Gauge)]>([:])

    // Chat: the cluster's tables as this node holds them, and this node's open subscriptions.
    let users, messages, onlineUsers, subscriptions, inboxMessages: Gauge
    // Process
    let residentMemory, openFileDescriptors: Gauge
    /// When the node's TLS certificate expires, in seconds since 1970 (alert on it: the
    /// shipped rule fires 30 days ahead).
    let certificateExpiry: Gauge

    public init(node: NodeID) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Fsyncs take 0.1–20 ms on a disk, applies less; a few buckets above for bad days.
        let fast: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        factory.durationHistogramBuckets = [
            "chorus_log_write_seconds": fast,
            "chorus_apply_seconds": fast,
            "chorus_grpc_request_duration_seconds": [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                                     .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5)],
            "chorus_snapshot_duration_seconds": [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30), .seconds(60)],
        ]
        let powersOfTwo = (0...12).map { Double(1 << $0) }
        factory.valueHistogramBuckets = [
            "chorus_raft_persisted_entries": powersOfTwo,
            "chorus_apply_batch_entries": powersOfTwo,
            "chorus_snapshot_bytes": (16...34).filter { $0 % 2 == 0 }.map { Double(1 << $0) },
        ]
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
        unauthenticatedRequests = counter("chorus_unauthenticated_requests_total")
        rateLimited = counter("chorus_rate_limited_requests_total")
        detachesRetried = counter("chorus_detaches_total", [("outcome", "retried")])
        detachesDropped = counter("chorus_detaches_total", [("outcome", "dropped")])

        snapshots = Dictionary(uniqueKeysWithValues: SnapshotEvent.allCases.map { event in
            let labels = [("event", event.rawValue)]
            return (event, (counter("chorus_snapshots_total", labels), histogram("chorus_snapshot_bytes", labels), timer("chorus_snapshot_duration_seconds", labels)))
        })

        users = gauge("chorus_users")
        messages = gauge("chorus_messages")
        onlineUsers = gauge("chorus_online_users")
        subscriptions = gauge("chorus_subscriptions")
        inboxMessages = gauge("chorus_inbox_messages")
        residentMemory = gauge("process_resident_memory_bytes")
        certificateExpiry = gauge("chorus_certificate_expiry_timestamp_seconds")
        openFileDescriptors = gauge("process_open_fds")
        gauge("chorus_node_id").record(Double(node))
        roles[.follower]?.record(1)
    }

    // MARK: Raft loop

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

    func recordSnapshot(_ event: SnapshotEvent, bytes: UInt64, duration: Duration) {
        guard let metrics = snapshots[event] else { return }
        metrics.count.increment()
        metrics.bytes.record(bytes)
        metrics.duration.record(duration: duration)
    }

    // MARK: Calls

    private struct CallMetrics {
        var counters: [String: Counter] = [:]
        var timers: [String: Timer] = [:]
    }

    private let calls = Mutex(CallMetrics())

    /// One gRPC call ended with `code` after `duration`. The label sets are bounded: the
    /// methods of our services, the sixteen status codes.
    func recordCall(method: String, code: String, duration: Duration?) {
        let (counter, timer): (Counter, Timer?) = calls.withLock { calls in
            let key = method + " " + code
            let counter: Counter
            if let known = calls.counters[key] {
                counter = known
            } else {
                counter = Counter(label: "chorus_grpc_requests_total", dimensions: [("method", method), ("code", code)], factory: factory)
                calls.counters[key] = counter
            }
            guard duration != nil else { return (counter, nil) }
            if let known = calls.timers[method] { return (counter, known) }
            let timer = Timer(label: "chorus_grpc_request_duration_seconds", dimensions: [("method", method)], factory: factory)
            calls.timers[method] = timer
            return (counter, timer)
        }
        counter.increment()
        if let duration { timer?.record(duration: duration) }
    }

    // MARK: Scrape

    /// The text a Prometheus scrape gets.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
