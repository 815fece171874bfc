import Foundation
import Synchronization

/// Exactly-once request ids. Concurrent operations each borrow a "lane" (its own client id
/// with its own sequence) and give it back when they finish; a retry reuses the lane and the
/// sequence, and so is applied at most once. With one request in flight per lane, each
/// request tells the cluster that everything before it is answered, so the cluster keeps one
/// result per lane (the cluster would keep a window of them for a client that pipelines).
final class RequestLanes: Sendable {
    struct Lane: Sendable {
        var clientID: String
        var sequence: UInt64
    }

    private let prefix: String
    private let state = Mutex<(free: [Lane], created: Int)>(([], 0))

    init(prefix: String = UUID().uuidString) {
        self.prefix = prefix
    }

    /// A lane with its next sequence number taken.
    func borrow() -> Lane {
        state.withLock { state in
            var lane = state.free.popLast() ?? {
                state.created += 1
                return Lane(clientID: "\(prefix)/\(state.created)", sequence: 0)
            }()
            lane.sequence += 1
            return lane
        }
    }

    func giveBack(_ lane: Lane) {
        state.withLock { $0.free.append(lane) }
    }
}
