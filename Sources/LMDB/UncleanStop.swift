import Foundation

/// `DATA/running` holds the kernel's boot id while a node runs and is removed when it stops
/// cleanly. Found at start, it means the last run ended abruptly: on the same boot (a killed
/// process) the page cache kept every write, but on another boot the unsynced projections
/// cannot be trusted. The node rebuilds them; an offline tool that would build on them refuses
/// the directory until the node has.
public enum UncleanStop {
    /// This boot's id (Linux); empty where there is none, which never asks for a rebuild.
    public static let bootID: String = {
        guard let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") else { return "" }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// The boot id of the run that did not stop cleanly, or nil after a clean stop.
    public static func check(_ directory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory + "/running") else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.hasPrefix("boot=") ? String(text.dropFirst("boot=".count)) : ""
    }

    public static func markRunning(_ directory: String) throws {
        guard !bootID.isEmpty else { return }
        try FileSystem.writeAtomically(Array("boot=\(bootID)\n".utf8), to: directory + "/running")
    }

    /// Marks the run as one whose unsynced writes cannot be trusted even on this boot: the
    /// disk failed under it, and a write-back error may have dropped pages the page cache
    /// no longer holds. The next start rebuilds as after a power loss.
    public static func markDiskFailed(_ directory: String) throws {
        try FileSystem.writeAtomically(Array("boot=disk-failed\n".utf8), to: directory + "/running")
    }

    /// Removes the marker durably; throws when the removal cannot be made durable (the next
    /// start then rebuilds, which is safe).
    public static func markStopped(_ directory: String) throws {
        guard unlink(directory + "/running") == 0 || errno == ENOENT else {
            throw FileSystemError("cannot remove \(directory)/running", errno: errno)
        }
        try FileSystem.sync(directory)
    }
}
