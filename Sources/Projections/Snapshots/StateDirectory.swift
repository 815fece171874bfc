import CrashPoints
import Foundation
import LMDB

/// A node's `state/` directory: the projections live in a generation subdirectory named by
/// the file `CURRENT`. Installing a snapshot builds the next generation beside the current
/// one and then replaces `CURRENT` by rename, so a crash at any step leaves either the old
/// projections or the new ones, never a mix.
public struct StateDirectory: Sendable {
    public let directory: String
    /// The memory map of every generation opened here.
    public let map: MapLimits
    /// What the node's build applies (`ChatState.build`).
    public let build: BuildVersions
    static let initialGeneration = "initial"

    public init(directory: String, map: MapLimits = .standard, build: BuildVersions = .current) {
        self.directory = directory
        self.map = map
        self.build = build
    }

    /// The generation `CURRENT` names (the initial one when there is no `CURRENT` yet).
    public var currentGeneration: String {
        guard let data = FileManager.default.contents(atPath: directory + "/CURRENT") else { return Self.initialGeneration }
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? Self.initialGeneration : name
    }

    /// The environment directory of the current projections.
    public var currentPath: String { directory + "/" + currentGeneration }

    /// Opens the current projections (creating the initial, empty ones for a new node) and
    /// removes whatever a crash left half-built.
    public func open() throws -> ChatState {
        try FileSystem.makePrivateDirectory(directory)
        let current = currentGeneration
        removeGenerations(except: current)
        return try ChatState(directory: directory + "/" + current, map: map, build: build)
    }

    /// Opens the projections of a node's data directory. When they are behind the point where
    /// the log begins (a crash came between recording an installed snapshot in the log and
    /// swapping the projections, or unsynced projections lost their tail after the log was
    /// compacted), the log alone cannot bring them up to date: the snapshot the log names
    /// replaces them.
    ///
    /// `logStart` is the last index the log discarded (the log holds `logStart + 1` on);
    /// `snapshot` the snapshot it records.
    public func open(logStart: UInt64, snapshot: (index: UInt64, term: UInt64), snapshots: SnapshotStore) throws -> ChatState {
        let state = try open()
        guard try state.lastApplied() < logStart else { return state }
        guard let info = snapshots.find(index: snapshot.index, term: snapshot.term) else {
            throw SnapshotError.missing(index: snapshot.index, term: snapshot.term, directory: snapshots.directory)
        }
        return try install(snapshotFile: snapshots.verifiedDataPath(info), generation: info.name)
    }

    /// Throws the current projections away and starts them again from the newest snapshot the
    /// log records (or empty when there is none); the log brings them up to date as it is
    /// applied. For projections that may be damaged: they skip fsync, and a power loss can
    /// leave their pages torn.
    public func rebuild(snapshot: (index: UInt64, term: UInt64), snapshots: SnapshotStore) throws -> ChatState {
        try FileSystem.makePrivateDirectory(directory)
        let generation = "rebuilt-" + UUID().uuidString
        if snapshot.index > 0 {
            guard let info = snapshots.find(index: snapshot.index, term: snapshot.term) else {
                throw SnapshotError.missing(index: snapshot.index, term: snapshot.term, directory: snapshots.directory)
            }
            return try install(snapshotFile: snapshots.verifiedDataPath(info), generation: generation)
        }
        let path = directory + "/" + generation
        try FileSystem.makePrivateDirectory(path)
        let state = try ChatState(directory: path, map: map, build: build)
        try state.sync()
        try FileSystem.writeAtomically(Array(generation.utf8), to: directory + "/CURRENT")
        removeGenerations(except: generation)
        return state
    }

    /// Makes a copy of the snapshot file the current projections and opens them. The caller
    /// closes the previous ones (by releasing them).
    public func install(snapshotFile: String, generation: String) throws -> ChatState {
        let temporary = directory + "/" + generation + ".tmp"
        let final = directory + "/" + generation
        try? FileManager.default.removeItem(atPath: temporary)
        if generation != currentGeneration { try? FileManager.default.removeItem(atPath: final) }
        try FileSystem.makePrivateDirectory(temporary)
        try FileSystem.copy(snapshotFile, to: temporary + "/data.mdb")
        try FileSystem.sync(temporary)
        if !FileSystem.exists(final) { try FileSystem.rename(temporary, to: final) }
        CrashPoint.reach("install-state-copied")
        // Opened before it becomes current: a snapshot of a newer format is refused here
        // (`NewerFormat`) and the projections stay what they were.
        let state = try ChatState(directory: final, map: map, build: build)
        try FileSystem.writeAtomically(Array(generation.utf8), to: directory + "/CURRENT")
        CrashPoint.reach("install-current")
        removeGenerations(except: generation)
        return state
    }

    /// Removes every generation but `keep`. An environment still open elsewhere in the
    /// process stays readable: its files live until closed.
    private func removeGenerations(except keep: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name != keep && name != "CURRENT" {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }
}
