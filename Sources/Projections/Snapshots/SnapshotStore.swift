import CrashPoints
import Foundation
import LMDB
import Replica

/// A node's `snapshots/` directory: compacted copies of the projections, one directory per
/// snapshot (`data.mdb` and `info.json`), and `incoming/` for files being received.
///
/// Every snapshot directory appears by one rename of a complete, fsynced temporary
/// directory, so a crash leaves either a whole snapshot or only a `tmp-` leftover, which
/// opening removes.
public struct SnapshotStore: Sendable {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileSystem.makePrivateDirectory(directory + "/incoming")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("tmp-") {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    /// Opens an existing directory without creating or cleaning anything (for tools).
    public init(existing directory: String) {
        self.directory = directory
    }

    // MARK: Reading

    /// Every complete snapshot, oldest first.
    public func all() -> [SnapshotInfo] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.compactMap { name in
            guard !name.hasPrefix("tmp-"), name != "incoming",
                  let data = FileManager.default.contents(atPath: "\(directory)/\(name)/info.json")
            else { return nil }
            return try? JSONDecoder().decode(SnapshotInfo.self, from: data)
        }
    }

    public func latest() -> SnapshotInfo? { all().last }

    /// The stored snapshot at this log position, if any.
    public func find(index: UInt64, term: UInt64) -> SnapshotInfo? {
        all().first { $0.index == index && $0.term == term }
    }

    /// The stored snapshot with this checksum, if any.
    public func find(sha256: [UInt8]) -> SnapshotInfo? {
        all().first { $0.sha256 == sha256 }
    }

    public func dataPath(_ info: SnapshotInfo) -> String {
        "\(directory)/\(info.name)/data.mdb"
    }

    /// The data file of `info`, once its size and SHA-256 are those recorded when it was
    /// stored: a snapshot damaged on disk never becomes a node's projections (which it would
    /// then send to its followers).
    public func verifiedDataPath(_ info: SnapshotInfo) throws -> String {
        let path = dataPath(info)
        guard FileSystem.size(path) == info.size, try SnapshotInfo.checksum(of: path) == info.sha256 else {
            throw SnapshotError.damaged(index: info.index, path: path)
        }
        return path
    }

    // MARK: Taking

    /// Takes a compacted copy of `state` (a consistent read: the writer is not blocked) and
    /// stores it. The position it records is the one the copy holds, read from the copy;
    /// `termAt` supplies the term when the projections did not record it.
    public func take(from state: ChatState, termAt: (UInt64) throws -> UInt64?) throws -> SnapshotInfo {
        let temporary = "\(directory)/tmp-\(UUID().uuidString)"
        try FileSystem.makePrivateDirectory(temporary)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        try state.environment.copy(to: temporary, compact: true)
        CrashPoint.reach("snapshot-copied")
        var position = try Self.position(ofCopyIn: temporary)
        if position.term == 0 && position.index > 0 {
            position.term = try termAt(position.index) ?? 0
        }
        let data = temporary + "/data.mdb"
        let info = SnapshotInfo(index: position.index, term: position.term, configuration: position.configuration,
                                size: FileSystem.size(data) ?? 0, sha256: try SnapshotInfo.checksum(of: data))
        return try store(temporary: temporary, info: info)
    }

    /// Reads the position out of a copy, then removes the lock file that opening it made.
    static func position(ofCopyIn directory: String) throws -> AppliedPosition {
        defer { try? FileManager.default.removeItem(atPath: directory + "/lock.mdb") }
        return try ChatState(directory: directory, readOnly: true).position()
    }

    // MARK: Receiving

    /// Where a file being received with this checksum accumulates.
    public func partialPath(sha256: [UInt8]) -> String {
        "\(directory)/incoming/" + sha256.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + ".partial"
    }

    /// Stores a completely received file as a snapshot, after checking its size and
    /// checksum. A file that fails the check is deleted, so the next transfer starts over.
    public func adopt(partial: String, info: SnapshotInfo) throws -> SnapshotInfo {
        if let existing = find(index: info.index, term: info.term) {
            try? FileManager.default.removeItem(atPath: partial)
            return existing
        }
        guard FileSystem.size(partial) == info.size, try SnapshotInfo.checksum(of: partial) == info.sha256 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw SnapshotError.checksumMismatch(index: info.index)
        }
        try FileSystem.sync(partial)
        let temporary = "\(directory)/tmp-\(UUID().uuidString)"
        try FileSystem.makePrivateDirectory(temporary)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        try FileSystem.rename(partial, to: temporary + "/data.mdb")
        return try store(temporary: temporary, info: info)
    }

    // MARK: Pruning

    /// Removes every snapshot older than `keeping`, and partial files of other transfers.
    public func prune(keeping: SnapshotInfo) {
        for info in all() where info.index < keeping.index {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(info.name)")
        }
    }

    /// Removes partial files, except the one with `except`'s checksum.
    public func removePartials(except: [UInt8]? = nil) {
        let keep = except.map { (partialPath(sha256: $0) as NSString).lastPathComponent }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory + "/incoming")) ?? [] where name != keep {
            try? FileManager.default.removeItem(atPath: "\(directory)/incoming/\(name)")
        }
    }

    /// Writes `info.json` into a complete temporary directory, makes both durable and
    /// renames the directory into place.
    private func store(temporary: String, info: SnapshotInfo) throws -> SnapshotInfo {
        let final = "\(directory)/\(info.name)"
        if FileSystem.exists(final + "/info.json") { return info }
        try? FileManager.default.removeItem(atPath: final)
        let encoded = try JSONEncoder().encode(info)
        guard FileManager.default.createFile(atPath: temporary + "/info.json", contents: encoded) else {
            throw FileSystemError("cannot write \(temporary)/info.json")
        }
        try FileSystem.sync(temporary + "/data.mdb")
        try FileSystem.sync(temporary + "/info.json")
        try FileSystem.sync(temporary)
        try FileSystem.rename(temporary, to: final)
        return info
    }
}

public enum SnapshotError: Error, CustomStringConvertible {
    case checksumMismatch(index: UInt64)
    case missing(index: UInt64, term: UInt64, directory: String)
    case damaged(index: UInt64, path: String)

    public var description: String {
        switch self {
        case let .checksumMismatch(index):
            "the snapshot at index \(index) arrived damaged (size or SHA-256 differ); it was discarded and will be sent again"
        case let .missing(index, term, directory):
            "the log was compacted behind a snapshot at index \(index) (term \(term)), but \(directory) does not hold it"
        case let .damaged(index, path):
            "the snapshot at index \(index) (\(path)) is damaged: its size or SHA-256 differ from those recorded when it was stored. Restore the data directory from a backup, or remove the node and add a new one"
        }
    }
}

extension SnapshotStore: SnapshotFiles {}
