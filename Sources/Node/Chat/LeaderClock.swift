import Foundation
import Synchronization

/// The timestamps a leader puts on commands: the log's clock (`SessionLifetime`) is the
/// latest of them, and it decides when sessions end and when the exactly-once table forgets
/// a client. A wall clock that jumps must not move it: a day's jump ahead would end every
/// session and forget every client with a request in flight.
///
/// So a stamp is the wall clock, kept within bounds measured on the monotonic clock: never
/// below the log's clock or the previous stamp (time in the log never runs back), and never
/// more than `rate` times the monotonic time since the previous stamp beyond it. The wall
/// clock is trusted once, when the node starts; from then on a jump ahead moves the stamps
/// at most `rate` times as fast as real time, and a jump back holds them where they were
/// until the wall clock passes them again.
///
/// This bounds what honest leaders propose. Apply still takes the maximum of the stamps as it
/// always has: a per-entry bound in apply would change what existing entries mean, and waits
/// for a command version behind the cluster version.
struct LogClock {
    /// How much faster than real time the stamps may run.
    static let rate: Int64 = 2

    /// The previous stamp (at first, the wall clock when the node started) and when it was
    /// taken.
    private(set) var last: (ms: Int64, at: ContinuousClock.Instant)

    init(wall: Int64, now: ContinuousClock.Instant) {
        last = (wall, now)
    }

    /// The stamp for a command proposed now: `wall` is the wall clock in ms since 1970,
    /// `logClock` the log's clock as this node has applied it.
    mutating func stamp(wall: Int64, logClock: Int64, now: ContinuousClock.Instant) -> Int64 {
        let elapsed = last.at.duration(to: now)
        let elapsedMs = max(0, elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let (allowance, overflow) = elapsedMs.multipliedReportingOverflow(by: Self.rate)
        let (ceiling, past) = last.ms.addingReportingOverflow(overflow ? .max : allowance)
        let stamp = max(logClock, last.ms, min(wall, past ? .max : ceiling))
        last = (stamp, max(last.at, now))
        return stamp
    }
}

/// `LogClock`, shared by the calls of one node, with the log's clock its applier last saw.
final class LeaderClock: Sendable {
    private let state: Mutex<(clock: LogClock, logClock: Int64)>

    init() {
        state = Mutex((LogClock(wall: Self.wall(), now: .now), .min))
    }

    /// The wall clock, in ms since 1970.
    static func wall() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The log's clock as this node applied it.
    func observe(logClock: Int64) {
        state.withLock { $0.logClock = max($0.logClock, logClock) }
    }

    /// A timestamp for a command proposed now.
    func stamp() -> Int64 {
        let (wall, now) = (Self.wall(), ContinuousClock.now)
        return state.withLock { state in state.clock.stamp(wall: wall, logClock: state.logClock, now: now) }
    }
}
