import Client
import Synchronization

/// Logouts the cluster did not confirm (it was failing over, or busy). The browser's cookie is
/// cleared at once whatever the cluster said; the session itself must end too, or a copy of
/// the cookie would still work. Each is retried in the background for a few minutes, and at
/// most `limit` wait at once (past it the oldest sessions still end at their expiry).
final class PendingLogouts: Sendable {
    let client: ChorusClient
    let limit: Int
    private let waiting = Mutex(0)

    init(client: ChorusClient, limit: Int = 1_000) {
        self.client = client
        self.limit = limit
    }

    /// How many logouts are being retried now.
    var count: Int { waiting.withLock { $0 } }

    /// Ends `token`'s session: tries now, and if that fails with anything but "already
    /// ended", keeps trying in the background. Returns whether it is confirmed now.
    @discardableResult
    func end(_ token: String) async -> Bool {
        switch await attempt(token) {
        case .done: return true
        case .retry: break
        }
        let admitted = waiting.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted else { return false }
        Task {
            defer { waiting.withLock { $0 -= 1 } }
            for pause in [1, 2, 5, 10, 20, 30, 60, 60] {
                try? await Task.sleep(for: .seconds(pause))
                if case .done = await attempt(token) { return }
            }
        }
        return false
    }

    private enum Attempt { case done, retry }

    private func attempt(_ token: String) async -> Attempt {
        do {
            try await client.logout(token: token)
            return .done
        } catch ChorusError.wrongCredentials {
            return .done  // already over
        } catch ChorusError.invalidInput {
            return .done  // a token the cluster will never take
        } catch {
            return .retry
        }
    }
}
