import Synchronization

/// The time the replica loop reads: ticks, request deadlines, the free-space check. The node
/// runs it on the system's monotonic clock; a simulation hands it a clock it moves itself
/// (`ManualClock`), so that a run of the real loop replays exactly from its seed.
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

/// A clock that moves only when told to.
public final class ManualClock: ReplicaClock {
    private let current: Mutex<ContinuousClock.Instant>

    public init(start: ContinuousClock.Instant = ContinuousClock.now) {
        current = Mutex(start)
    }

    public var now: ContinuousClock.Instant { current.withLock { $0 } }

    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock never goes back")
        current.withLock { $0 = $0 + duration }
    }

    public func advance(to instant: ContinuousClock.Instant) {
        current.withLock { $0 = max($0, instant) }
    }
}
