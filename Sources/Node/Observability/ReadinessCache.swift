/// The readiness last found and whether a probe is under way, so that health checks cost one
/// probe (a round trip through the Raft loop and a `statvfs`) per `maxAge`, not one each:
/// gRPC health checks come as often as a load balancer or a client likes.
///
/// An answer is at most `maxAge` old; while a probe is under way (it takes at most a second,
/// `ReadinessProbe.status(within:)`), callers get the last one if it is under `maxStale` old
/// rather than start probes of their own.
struct ReadinessCache {
    enum Decision: Equatable {
        case answer(Readiness)
        case probe
    }

    let maxAge: Duration
    let maxStale: Duration
    private var last: (readiness: Readiness, at: ContinuousClock.Instant)?
    private var probing = false

    init(maxAge: Duration = .milliseconds(100), maxStale: Duration = .seconds(2)) {
        self.maxAge = maxAge
        self.maxStale = maxStale
    }

    /// What a caller at `now` does: answer from what was found, or probe (and then say what
    /// it found with `found`).
    mutating func ask(now: ContinuousClock.Instant) -> Decision {
        if let last, now - last.at < maxAge { return .answer(last.readiness) }
        if probing, let last, now - last.at < maxStale { return .answer(last.readiness) }
        probing = true
        return .probe
    }

    mutating func found(_ readiness: Readiness, at now: ContinuousClock.Instant) {
        last = (readiness, now)
        probing = false
    }
}
