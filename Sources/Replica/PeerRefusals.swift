import Logging
import Raft
import Synchronization

/// Counts the peer messages this node refused and logs them at warning, naming the sender.
/// An honest cluster refuses none, so every refusal is worth a line; but a peer that sends a
/// flood of bad messages must not flood the log too: each sender gets at most one line a
/// second, which also says how many were refused since its last line.
package final class PeerRefusals: Sendable {
    private struct State {
        var total: UInt64 = 0
        var lastLogged: [NodeID: ContinuousClock.Instant] = [:]
        var unlogged: [NodeID: UInt64] = [:]
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let clock = ContinuousClock()
    /// Senders tracked for rate limiting; a forged stream of random ids must not grow the map
    /// without end.
    private static let maxTrackedSenders = 1_024

    package init(logger: Logger) {
        self.logger = logger
    }

    /// Refusals since the node started.
    package var total: UInt64 { state.withLock { $0.total } }

    package func record(from sender: NodeID, _ refusal: Refusal) {
        let now = clock.now
        let suppressed: UInt64? = state.withLock { state in
            state.total += 1
            if let last = state.lastLogged[sender], now - last < .seconds(1) {
                state.unlogged[sender, default: 0] += 1
                return nil
            }
            if state.lastLogged.count >= Self.maxTrackedSenders { state.lastLogged = [:] }
            state.lastLogged[sender] = now
            return state.unlogged.removeValue(forKey: sender) ?? 0
        }
        guard let suppressed else { return }
        var line: Logger.Message = "refused a peer message from node \(sender): \(refusal)"
        if suppressed > 0 { line = "\(line) (and \(suppressed) more from it in the last second)" }
        logger.warning(line, metadata: ["peer": "\(sender)", "reason": "\(refusal.reason)"])
    }
}
