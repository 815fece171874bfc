import CoreMetrics
import Metrics
import Replica
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

    /// The replica loop's: Raft state, log writes and applies, proposals, snapshots, peers.
    public let replica: ReplicaMetrics
    /// Client requests refused for want of a live session, and requests refused by a
    /// per-address limit.
    let unauthenticatedRequests, rateLimited: Counter
    /// Detaches proposed again because the leader was busy, and given up after every attempt.
    let detachesRetried, detachesDropped: Counter

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

        replica = ReplicaMetrics(factory: factory)
        unauthenticatedRequests = counter("chorus_unauthenticated_requests_total")
        rateLimited = counter("chorus_rate_limited_requests_total")
        detachesRetried = counter("chorus_detaches_total", [("outcome", "retried")])
        detachesDropped = counter("chorus_detaches_total", [("outcome", "dropped")])

        users = gauge("chorus_users")
        messages = gauge("chorus_messages")
        onlineUsers = gauge("chorus_online_users")
        subscriptions = gauge("chorus_subscriptions")
        inboxMessages = gauge("chorus_inbox_messages")
        residentMemory = gauge("process_resident_memory_bytes")
        certificateExpiry = gauge("chorus_certificate_expiry_timestamp_seconds")
        openFileDescriptors = gauge("process_open_fds")
        gauge("chorus_node_id").record(Double(node))
    }

    // MARK: Calls

    private let recorders = Mutex<[String: CallRecorder]>([:])

    /// The counts and times of `method`'s calls, made at its first call and kept: a caller that
    /// keeps the recorder (`UnaryRoutes`) records a call without a lock on this table. The label
    /// sets are bounded: the methods of our services, the sixteen status codes. `timed`: the
    /// method is unary (a stream lives as long as its client, and its length says nothing of
    /// latency); a method is always asked the same way.
    func calls(of method: String, timed: Bool) -> CallRecorder {
        recorders.withLock { recorders in
            if let known = recorders[method] { return known }
            let recorder = CallRecorder(method: method, timer: timed ? Timer(label: "chorus_grpc_request_duration_seconds", dimensions: [("method", method)], factory: factory) : nil,
                                        factory: factory)
            recorders[method] = recorder
            return recorder
        }
    }

    // MARK: Scrape

    /// The text a Prometheus scrape gets.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// `chorus_grpc_requests_total{method,code}` and `chorus_grpc_request_duration_seconds{method}`
/// for one method (`NodeMetrics.calls(of:timed:)`). A code's counter is made the first time the
/// code is seen, so the exposition lists only what happened.
final class CallRecorder: Sendable {
    let method: String
    let timer: Timer?
    private let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: Counter]>([:])

    init(method: String, timer: Timer?, factory: PrometheusMetricsFactory) {
        self.method = method
        self.timer = timer
        self.factory = factory
    }

    /// `code` is one of `RequestMetrics.names`' static strings.
    func record(_ code: String, since started: ContinuousClock.Instant) {
        record(code, duration: ContinuousClock.now - started)
    }

    /// One call ended with `code` after `duration` (not timed without a timer).
    func record(_ code: String, duration: Duration) {
        let counter = counters.withLock { counters in
            if let known = counters[code] { return known }
            let counter = Counter(label: "chorus_grpc_requests_total", dimensions: [("method", method), ("code", code)], factory: factory)
            counters[code] = counter
            return counter
        }
        counter.increment()
        timer?.record(duration: duration)
    }
}
