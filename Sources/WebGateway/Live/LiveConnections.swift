import Synchronization

/// Counts open live connections, in all, per session and per address, so a browser (or a
/// script with one stolen cookie, or one host with many accounts) cannot open streams without
/// end or take every slot.
final class LiveConnections: Sendable {
    enum Refusal: Error {
        case gatewayFull(Int)
        case sessionFull(Int)
        case addressFull(Int)
    }

    private struct State {
        var total = 0
        var bySession: [String: Int] = [:]
        var byAddress: [String: Int] = [:]
    }

    private let state = Mutex(State())
    let limit: Int
    let perSession: Int
    let perAddress: Int

    init(limit: Int, perSession: Int, perAddress: Int) {
        self.limit = limit
        self.perSession = perSession
        self.perAddress = perAddress
    }

    /// Runs `body` holding one connection of `session` from `address`, or throws a refusal
    /// without running it.
    func holding<R>(_ session: String, from address: String, _ body: () async throws -> R) async throws -> R {
        try state.withLock { state in
            guard state.total < limit else { throw Refusal.gatewayFull(limit) }
            guard state.bySession[session, default: 0] < perSession else { throw Refusal.sessionFull(perSession) }
            guard state.byAddress[address, default: 0] < perAddress else { throw Refusal.addressFull(perAddress) }
            state.total += 1
            state.bySession[session, default: 0] += 1
            state.byAddress[address, default: 0] += 1
        }
        defer {
            state.withLock { state in
                state.total -= 1
                state.bySession[session, default: 1] -= 1
                if state.bySession[session] == 0 { state.bySession[session] = nil }
                state.byAddress[address, default: 1] -= 1
                if state.byAddress[address] == 0 { state.byAddress[address] = nil }
            }
        }
        return try await body()
    }

    var open: Int { state.withLock { $0.total } }
}
