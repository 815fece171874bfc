/// The readiness last found and whether a probe is under way, so that health checks cost one
/// probe (a round trip through the Raft loop and a `statvfs`) per `maxAge`, not one each:
/// gRPC health checks come as often as a load balancer or a client likes.
///
/// An answer is at most `maxAge` old when no probe is under way. While one is (it takes at
/// most a second, `ReadinessProbe.status(within:)`), callers get the last answer, however
/// old, rather than start probes of their own and queue more work on a loop that is slow to
/// answer; a probe that has not said what it found after `probeTimeout` is taken as lost.
struct ReadinessCache {
    enum Decision: Equatable {
        case answer(Readiness)
        case probe
    }

    let maxAge: Duration
    let probeTimeout: Duration
    private var last: (readiness: Readiness, at: ContinuousClock.Instant)?
    private var probeStarted: ContinuousClock.Instant?

    init(maxAge: Duration = .milliseconds(100), probeTimeout: Duration = .seconds(2)) {
        self.maxAge = maxAge
        self.probeTimeout = probeTimeout
    }

    /// What a caller at `now` does: answer from what was found, or probe (and then say what
    /// it found with `found`).
    mutating func ask(now: ContinuousClock.Instant) -> Decision {
        if let last, now - last.at < maxAge { return .answer(last.readiness) }
        if let probeStarted, now - probeStarted < probeTimeout, let last { return .answer(last.readiness) }
        probeStarted = now
        return .probe
    }

    mutating func found(_ readiness: Readiness, at now: ContinuousClock.Instant) {
        last = (readiness, now)
        probeStarted = nil
    }
}
