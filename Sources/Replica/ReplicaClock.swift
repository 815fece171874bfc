/// The time the replica loop reads: ticks, request deadlines, the free-space check. The node
/// runs it on the system's monotonic clock; a simulation hands it a clock it moves itself
/// (the tests' `ManualClock`), so that a run of the real loop replays exactly from its seed.
///
/// Instants stay `ContinuousClock.Instant`: only differences between them mean anything to
/// the loop, so a manual clock starts wherever the system clock stood and moves from there.
public protocol ReplicaClock: Sendable {
    var now: ContinuousClock.Instant { get }
}

/// The system's monotonic clock.
public struct SystemClock: ReplicaClock {
    public init() {}
    public var now: ContinuousClock.Instant { ContinuousClock.now }
}
