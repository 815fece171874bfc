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

    /// Writes `contents` to `path` atomically: a temporary file, fsynced, renamed over the
    /// target, and the directory fsynced.
    public static func writeAtomically(_ contents: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(contents)) else {
            throw FileSystemError("cannot write \(temporary)", errno: errno)
        }
        try sync(temporary)
        try rename(temporary, to: path)
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

    init(_ message: String, errno code: Int32) {
        description = code == 0 ? message : "\(message): \(String(cString: strerror(code)))"
    }
}
