import Foundation
import Synchronization

/// The timestamps a leader puts on commands: the log's clock (`SessionLifetime`) is the
/// latest of them, and it decides when sessions end and when the exactly-once table forgets
/// a client. A wall clock that jumps must not move it: a day's jump ahead would end every
/// session and forget every client with a request in flight.
///
/// So a stamp is the wall clock, bounded by the monotonic clock. The node trusts the wall
/// clock once, when it starts, and from then on estimates the true time as a trusted reading
/// plus the monotonic time since (plus 0.1%, more than NTP ever slews). A stamp is never
/// later than that estimate, and never earlier than the log's clock or the previous stamp
/// (time in the log never runs back). While the wall clock is sane the stamp is the wall
/// clock, and each such reading is trusted anew; a jump ahead is held to the estimate, so the
/// log's clock runs no faster than real time; a jump back holds the stamps where they were
/// until the wall clock passes them again. The estimate does not age: a node that last
/// stamped hours ago, as a follower, is bounded by the true time all the same.
///
/// The price: a node whose wall clock is stepped forward after it started (a clock fixed by
/// NTP late) stamps behind the wall until it restarts; with other leaders' stamps ahead, the
/// log's clock is the floor.
///
/// This bounds what honest leaders propose. Apply still takes the maximum of the stamps as it
/// always has: a per-entry bound in apply would change what existing entries mean, and waits
/// for a command version behind the cluster version.
struct LogClock {
    /// A wall clock reading trusted as the true time, and when it was read.
    private(set) var anchor: (ms: Int64, at: ContinuousClock.Instant)
    /// The previous stamp.
    private(set) var last: Int64 = .min

    init(wall: Int64, now: ContinuousClock.Instant) {
        anchor = (wall, now)
    }

    /// The stamp for a command proposed now: `wall` is the wall clock in ms since 1970,
    /// `logClock` the log's clock as this node has applied it.
    mutating func stamp(wall: Int64, logClock: Int64, now: ContinuousClock.Instant) -> Int64 {
        let elapsed = anchor.at.duration(to: now)
        let elapsedMs = max(0, elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        let (estimate, past) = anchor.ms.addingReportingOverflow(elapsedMs)
        let (ceiling, beyond) = estimate.addingReportingOverflow(elapsedMs / 1_000)
        let bounded = min(wall, past || beyond ? .max : ceiling)
        // A reading at or past the estimate is trusted from here on; one behind it (a jump
        // back, or a slow slew) leaves the estimate running.
        if !past && bounded >= estimate { anchor = (bounded, max(anchor.at, now)) }
        let stamp = max(logClock, last, bounded)
        last = stamp
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

    /// The log's clock as this node applied it: the floor of its stamps.
    func observe(logClock: Int64) {
        state.withLock { $0.logClock = max($0.logClock, logClock) }
    }

    /// A timestamp for a command proposed now.
    func stamp() -> Int64 {
        let (wall, now) = (Self.wall(), ContinuousClock.now)
        return state.withLock { state in state.clock.stamp(wall: wall, logClock: state.logClock, now: now) }
    }
}
