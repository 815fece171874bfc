import Node
import Replica
import Synchronization

/// A clock that moves only when the simulation moves it, forward only.
final class ManualClock: ReplicaClock {
    private let current: Mutex<ContinuousClock.Instant>

    init(start: ContinuousClock.Instant = ContinuousClock.now) {
        current = Mutex(start)
    }

    var now: ContinuousClock.Instant { current.withLock { $0 } }

    func advance(by duration: Duration) {
        current.withLock { $0 = $0 + max(duration, .zero) }
    }
}
