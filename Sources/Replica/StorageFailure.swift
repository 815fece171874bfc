import Foundation

/// A write to the node's disk that failed, said the way an operator would act on it.
///
/// The node stops on one instead of going on: what it could not write it must not
/// acknowledge, and a replica that skipped an apply would differ from the others without a
/// word. Nothing is lost by stopping: the entries it could not take are on the other
/// replicas, and a restart (once the disk is fixed) catches up from them. LMDB reports a full
/// file system as ENOSPC, or as EIO when a write came up short, so an EIO is checked against
/// the free space before it is called a disk error.
public struct StorageFailure: Error, CustomStringConvertible {
    /// What the node was doing, e.g. "writing the Raft log".
    package let doing: String
    package let error: any Error

    package init(doing: String, error: any Error) {
        self.doing = doing
        self.error = error
    }

    /// Runs `body`; what it throws becomes a failure of `doing`, unless it already says why
    /// the node stops: a `StorageFailure`, or a `MachineRefusal` (an entry or a snapshot of a
    /// newer build, which must not read as a failed disk).
    package static func wrapping<T>(doing: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as StorageFailure {
            throw failure
        } catch let refusal as any MachineRefusal {
            throw refusal
        } catch {
            throw StorageFailure(doing: doing(), error: error)
        }
    }

    /// The exit status of a node stopped by its storage (EX_IOERR).
    public static let exitStatus: Int32 = 74

    public var description: String {
        if (error as? any StorageEngineError)?.damagedData == true {
            return "\(doing) failed: \(error). The node stops rather than serve, send or apply a damaged entry; its peers hold the entry: replace this node's data (remove it from the cluster and add a new member in its place, or restore the directory from a backup)"
        }
        return "\(doing) failed: \(cause). The node stops rather than acknowledge what it could not write; the other replicas hold everything it was acknowledged for, and it catches up from them when it starts again"
    }

    var cause: String {
        if let low = error as? LowFreeSpace {
            return "the file system holding \(low.path) is nearly full (\(low.space), less than --min-free-space \(Space.size(low.minimum))): free space there or move the data directory to a larger one"
        }
        guard let engine = error as? any StorageEngineError, let path = engine.failedPath, let code = engine.errorNumber else { return "\(error)" }
        let space = Self.space(of: path)
        switch code {
        case ENOSPC:
            return "the file system holding \(path) is full\(space.map { " (\($0))" } ?? ""): free space there or move the data directory to a larger one (\(error))"
        case EIO where space.map { $0.available < Self.nearlyFull } ?? false:
            return "the file system holding \(path) is full (\(space!)): free space there or move the data directory to a larger one (\(error))"
        case EIO:
            return "the disk holding \(path) reported an I/O error\(space.map { " (\($0))" } ?? ""): check the device (dmesg, SMART) before restarting the node; if it is failing, replace the node's data from its peers (\(error))"
        case EDQUOT:
            return "the disk quota of the node's user on the file system holding \(path) is used up: raise it or free space (\(error))"
        case EROFS:
            return "the file system holding \(path) is mounted read-only, as a kernel does after disk errors: check the device and remount it (\(error))"
        default:
            return "\(error)"
        }
    }

    /// Below this much free space, a short write is taken for a full file system.
    static let nearlyFull: UInt64 = 64 << 20

    struct Space: CustomStringConvertible {
        var available: UInt64
        var total: UInt64
        var description: String { "\(Self.size(available)) free of \(Self.size(total))" }

        static func size(_ bytes: UInt64) -> String {
            bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
                : bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / Double(1 << 20))
                : "\(bytes / 1_024) KiB"
        }
    }

    static func space(of path: String) -> Space? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        let block = UInt64(stats.f_frsize)
        return Space(available: UInt64(stats.f_bavail) * block, total: UInt64(stats.f_blocks) * block)
    }
}

/// A file system holding the node's data with less free space than it must keep.
struct LowFreeSpace: Error {
    let path: String
    let space: StorageFailure.Space
    let minimum: UInt64
}

/// An error of the store under the log or the state machine, told apart the way an operator
/// acts on it: a system call's error number and the file it concerned (a full, failing or
/// read-only file system), or data that failed its checksum. The node's stores conform to it
/// (`LMDBError`, `LogStoreError`), so that the loop says what went wrong without knowing them.
public protocol StorageEngineError: Error {
    /// The system's error number, when a system call failed.
    var errorNumber: Int32? { get }
    /// The file or directory concerned.
    var failedPath: String? { get }
    /// Stored data failed its checksum when read.
    var damagedData: Bool { get }
}

