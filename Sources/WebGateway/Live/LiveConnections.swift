import Synchronization

/// Counts open live connections, in all and per session, so a browser (or a script with one
/// stolen cookie) cannot open streams without end.
final class LiveConnections: Sendable {
    enum Refusal: Error {
        case gatewayFull(Int)
        case sessionFull(Int)
    }

    private struct State {
        var total = 0
        var bySession: [String: Int] = [:]
    }

    private let state = Mutex(State())
    let limit: Int
    let perSession: Int

    init(limit: Int, perSession: Int) {
        self.limit = limit
        self.perSession = perSession
    }

    /// Runs `body` holding one connection of `session`, or throws a refusal without running it.
    func holding<R>(_ session: String, _ body: () async throws -> R) async throws -> R {
        try state.withLock { state in
            guard state.total < limit else { throw Refusal.gatewayFull(limit) }
            guard state.bySession[session, default: 0] < perSession else { throw Refusal.sessionFull(perSession) }
            state.total += 1
            state.bySession[session, default: 0] += 1
        }
        defer {
            state.withLock { state in
                state.total -= 1
                state.bySession[session, default: 1] -= 1
                if state.bySession[session] == 0 { state.bySession[session] = nil }
            }
        }
        return try await body()
    }

    var open: Int { state.withLock { $0.total } }
}
