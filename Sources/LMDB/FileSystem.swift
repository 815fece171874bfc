import Foundation

/// The few file operations crash-safe directory swaps need: fsync of files and directories,
/// and atomic replacement by rename.
public enum FileSystem {
    /// fsyncs a file or a directory (a directory's fsync makes renames in it durable).
    public static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileSystemError("cannot open \(path) to sync it", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileSystemError("fsync of \(path) failed", errno: errno) }
    }

    /// Writes `contents` to `path` atomically: a temporary file readable by this user only,
    /// fsynced, renamed over the target, and the directory fsynced. Any failure, an fsync's
    /// included, is thrown: a caller never goes on believing the file is durable.
    public static func writeAtomically(_ contents: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, privateFileMode)
        guard fd >= 0 else { throw FileSystemError("cannot create \(temporary)", errno: errno) }
        do {
            defer { close(fd) }
            var written = 0
            while written < contents.count {
                let n = contents[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileSystemError("cannot write \(temporary)", errno: errno) }
                written += n
            }
            guard fsync(fd) == 0 else { throw FileSystemError("fsync of \(temporary) failed", errno: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        try rename(temporary, to: path)
    }

    /// Data directories and the files in them hold password and session hashes: only the
    /// node's user may read them.
    public static let privateFileMode: mode_t = 0o600
    public static let privateDirectoryMode: mode_t = 0o700

    /// Creates `path` and its missing parents, each readable by this user only (an existing
    /// directory keeps its mode).
    public static func makePrivateDirectory(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, privateDirectoryMode) != 0 && errno != EEXIST {
                throw FileSystemError("cannot create the directory \(current)", errno: errno)
            }
        }
    }

    /// The permission bits of `path` (e.g. 0o700), or nil when it cannot be read.
    public static func permissions(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    /// The permission bits of `path` that let users other than its owner in (group and
    /// others), or nil when it cannot be read.
    public static func sharedBits(_ path: String) -> mode_t? {
        permissions(path).map { $0 & 0o077 }
    }

    /// Renames `from` to `to` (replacing a file, or an empty directory) and fsyncs the parent.
    public static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw FileSystemError("cannot rename \(from) to \(to)", errno: errno)
        }
        try sync((to as NSString).deletingLastPathComponent)
    }

    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    public static func size(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_size)
    }

    /// Copies a file and fsyncs the copy.
    public static func copy(_ from: String, to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        do {
            try FileManager.default.copyItem(atPath: from, toPath: to)
        } catch {
            throw FileSystemError("cannot copy \(from) to \(to): \(error)", errno: 0)
        }
        try sync(to)
    }
}

public struct FileSystemError: Error, CustomStringConvertible {
    public let description: String
    /// The system's error number (0 when none).
    public let errno: Int32

    init(_ message: String, errno code: Int32) {
        errno = code
        description = code == 0 ? message : "\(message): \(String(cString: strerror(code)))"
    }
}
