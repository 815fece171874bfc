import NIOPosix
import Synchronization

/// PBKDF2 (tens to hundreds of milliseconds per password) on threads of its own, never on an
/// event loop, where it would hold up every call and heartbeat behind it, nor on Swift's
/// cooperative pool, which the rest of the node shares. At most `maxWaiting` checks are
/// admitted at once; past that a caller is told the node is busy instead of queueing without
/// bound (a login storm costs the attacker a refusal each, not the node a thread each).
final class PasswordHasher: Sendable {
    let pool: NIOThreadPool
    let maxWaiting: Int
    private let admitted = Atomic<Int>(0)

    struct Busy: Error {
        var maxWaiting: Int
    }

    init(threads: Int, maxWaiting: Int) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        self.maxWaiting = maxWaiting
    }

    /// Runs `body` on the pool, or throws `Busy` when `maxWaiting` are already admitted.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let before = admitted.add(1, ordering: .relaxed).oldValue
        defer { admitted.subtract(1, ordering: .relaxed) }
        guard before < maxWaiting else { throw Busy(maxWaiting: maxWaiting) }
        return try await pool.runIfActive(body)
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
