#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps transactions and map resizes apart. LMDB lets `mdb_env_set_mapsize` run only while
/// no transaction of this process is active, and does not check: every transaction holds
/// the gate shared, a resize holds it exclusively.
///
/// A read-write lock rather than a `Mutex`: readers on many threads and the one writer run
/// side by side as LMDB intends; only the rare resize waits for all of them. Readers are
/// preferred (glibc's default), so a thread may begin a transaction while it holds one; a
/// resize waits for a moment with no transaction, which short ones leave often.
final class ResizeGate: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` while no resize can happen.
    func shared<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// Runs `body` while no transaction is active.
    func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
