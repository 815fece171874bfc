#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on a file in a data directory: the node holds it while it runs, and
/// the offline tools that rewrite the directory take it too. Released when the process exits
/// (however it exits), so a stale lock never blocks a restart.
public final class DirectoryLock: Sendable {
    let descriptor: Int32

    /// Locks `directory/lock`; throws `DirectoryLock.InUse` when another process holds it.
    public init(directory: String) throws {
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, FileSystem.privateFileMode)
        guard fd >= 0 else { throw LMDBError(code: errno, operation: "open \(path)", path: directory) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw InUse(directory: directory)
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    public struct InUse: Error, CustomStringConvertible {
        public let directory: String
        public var description: String { "the data directory \(directory) is in use by another process" }
    }
}
