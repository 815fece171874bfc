import Foundation
import LMDB
import Raft
@testable import Replica
import Synchronization
@testable import Node

/// A replica's Raft log on a simulated disk, for the replica simulation: what a write does
/// when the disk is slow, fails, fills up or loses power is decided by the simulation's seed.
///
/// Two copies of the log: `Platter.durable`, what survives a power cut (the platter outlives
/// the process), and the process's own view (the page cache), which a power cut drops and a
/// process that dies leaves to the kernel to write (`processEnded`). A write is
/// synced before it returns, as LMDB's commit is, unless the platter lies about syncing
/// (`Platter.liesAboutSync`, a planted fault: the write reaches the platter only at a later
/// writeback). Every write is atomic, as LMDB's two meta pages make it: a write cut off by a
/// crash or an error leaves either the old log or the new one on the platter, never a mix.
final class SimulatedDisk: ReplicaLog, @unchecked Sendable {
    /// The log as one copy holds it, with LMDB's rules for compaction and overwrite.
    struct Image: Equatable, Sendable {
        var hardState = HardState()
        var snapshot = SnapshotMetadata()
        /// The last discarded index and its term.
        var start: (index: Index, term: Term) = (0, 0)
        /// Entries `start.index + 1 ...`, consecutive.
        var entries: [Entry] = []

        static func == (a: Image, b: Image) -> Bool {
            a.hardState == b.hardState && a.snapshot == b.snapshot && a.start == b.start && a.entries == b.entries
        }

        var lastIndex: Index { entries.last?.index ?? start.index }

        func term(at index: Index) -> Term? {
            if index > start.index, index <= lastIndex { return entries[Int(index - start.index - 1)].term }
            if index == start.index { return start.term }
            return index == snapshot.index ? snapshot.term : nil
        }

        mutating func append(_ batch: [Entry]) throws {
            guard let first = batch.first?.index else { return }
            guard first > start.index, first <= lastIndex + 1 else {
                throw SimulatedDisk.Misuse("entries from \(first) do not follow the log \(start.index + 1)...\(lastIndex)")
            }
            entries.removeLast(Int(lastIndex + 1 - first))
            entries += batch
        }

        /// `LogStore.compact`: a snapshot that matches the log discards up to `through`; one
        /// that does not (a leader's, ahead or conflicting) discards the whole log.
        mutating func compact(to metadata: SnapshotMetadata, discardingThrough through: Index) {
            guard metadata.index >= snapshot.index else { return }
            if metadata.index < start.index || term(at: metadata.index) != metadata.term {
                if metadata.index < start.index && metadata.index > 0 { return }
                entries = []
                start = (metadata.index, metadata.term)
            } else if min(through, metadata.index) > start.index, let term = term(at: min(through, metadata.index)) {
                let through = min(through, metadata.index)
                entries.removeFirst(Int(through - start.index))
                start = (through, term)
            }
            if metadata.index > snapshot.index || snapshot.index == 0 { snapshot = metadata }
        }
    }

    /// A use of the log the loop must never make (entries out of order): a bug, not a fault.
    struct Misuse: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// What a write runs into, drawn from the seed.
    enum Fault: Equatable {
        /// The disk reports an I/O error: the write may or may not be on the platter.
        case ioError
        /// The file system is full: nothing of the write is on the platter.
        case full
        /// Power goes while the write runs: the process dies with it.
        case powerLoss
    }

    /// The medium, which outlives every process that runs on it. Confined to the simulation's
    /// thread (and the loops it turns).
    final class Platter: @unchecked Sendable {
        var durable: Image
        var random: SplitMix
        /// Chance that a write fails, and how (`Fault`); none by default.
        var faultRate = 0.0
        /// A planted fault: a sync returns without writing; the platter catches up only at
        /// writebacks, 1 in 20 writes.
        var liesAboutSync = false
        /// A planted bug in the encoding of the hard state: the vote is never written.
        var forgetsVotes = false
        /// How long a synced write takes: 0.1–2 ms, 1 in 50 writes 30 ms.
        var latency: (inout SplitMix) -> Duration = { random in
            random.chance(0.02) ? .milliseconds(30) : .microseconds(100 + random.below(1_900))
        }
        /// Faults met so far, by kind, and writes.
        var faults: [Fault: Int] = [:]
        var writes = 0

        init(bootstrap: Image, seed: UInt64) {
            durable = bootstrap
            random = SplitMix(state: seed ^ 0x6469_736B)
        }
    }

    let platter: Platter
    let bootstrap: ClusterConfiguration
    /// Where LMDB would keep the log: named in the errors it reports.
    let path: String
    /// Told how long each synced write kept the process waiting (the simulation holds the
    /// replica's later messages and turns back that long).
    let waited: (Duration) -> Void
    private let view: Mutex<Image>
    /// The fault that stopped this process's writes: every later write fails as well.
    private(set) var failed: Fault?

    /// Opens the log as the platter holds it, as a new process would.
    init(platter: Platter, bootstrap: ClusterConfiguration = ClusterConfiguration(), path: String, waited: @escaping (Duration) -> Void = { _ in }) {
        self.platter = platter
        self.bootstrap = bootstrap
        self.path = path
        self.waited = waited
        view = Mutex(platter.durable)
    }

    var image: Image { view.withLock { $0 } }

    // MARK: What the core reads

    func initialState() -> (HardState, ClusterConfiguration) {
        (image.hardState, snapshotMetadata().configuration)
    }

    func entries(from: Index, to: Index, maxBytes: Int) throws(StorageError) -> [Entry] {
        guard from < to else { return [] }
        let image = self.image
        guard from > image.start.index else { throw .compacted }
        guard to - 1 <= image.lastIndex else { throw .unavailable }
        var result: [Entry] = []
        var bytes = 0
        for index in from..<to {
            let entry = image.entries[Int(index - image.start.index - 1)]
            bytes += entry.data.count
            if !result.isEmpty && bytes > maxBytes { break }
            result.append(entry)
        }
        return result
    }

    func term(at index: Index) throws(StorageError) -> Term {
        let image = self.image
        if let term = image.term(at: index) { return term }
        throw index <= image.start.index ? .compacted : .unavailable
    }

    func firstIndex() -> Index { image.start.index + 1 }
    func lastIndex() -> Index { image.lastIndex }

    func snapshot() throws(StorageError) -> Snapshot {
        let metadata = snapshotMetadata()
        guard metadata.index > 0 else { throw .snapshotTemporarilyUnavailable }
        return Snapshot(metadata: metadata)
    }

    func snapshotMetadata() -> SnapshotMetadata {
        var metadata = image.snapshot
        if metadata.configuration.isEmpty { metadata.configuration = bootstrap }
        return metadata
    }

    var termReader: @Sendable (Index) throws -> Term? {
        { [self] index in image.term(at: index) }
    }

    // MARK: What the loop writes

    func persist(hardState: HardState?, entries: [Entry], snapshot: SnapshotMetadata?) throws {
        guard hardState != nil || !entries.isEmpty || snapshot != nil else { return }
        try write { image in
            if let snapshot { image.compact(to: snapshot, discardingThrough: snapshot.index) }
            if let hardState { image.hardState = hardState }
            try image.append(entries)
        }
    }

    func compact(to snapshot: SnapshotMetadata, trailingEntries: UInt64) throws -> Index {
        try write { image in
            image.compact(to: snapshot, discardingThrough: snapshot.index > trailingEntries ? snapshot.index - trailingEntries : 0)
        }
        return firstIndex()
    }

    /// One atomic write: to the process's view, and synced to the platter, or a fault.
    private func write(_ change: (inout Image) throws -> Void) throws {
        if let failed { throw error(failed) }
        var next = image
        try change(&next)
        platter.writes += 1
        let fault: Fault? = platter.random.chance(platter.faultRate)
            ? [Fault.ioError, .full, .powerLoss][platter.random.below(3)] : nil
        if let fault {
            platter.faults[fault, default: 0] += 1
            failed = fault
            // A full disk took nothing; an I/O error or a power cut may have come before or
            // after the platter took the write.
            if fault != .full, platter.random.chance(0.5) { platter.durable = stored(next) }
            throw error(fault)
        }
        view.withLock { $0 = next }
        if !platter.liesAboutSync || platter.random.chance(0.05) {
            platter.durable = stored(next)
        }
        waited(platter.latency(&platter.random))
    }

    /// The process ended without the power going (SIGKILL, or a stop): what it wrote reaches
    /// the platter all the same, from the kernel's page cache. A write that failed took
    /// whatever it took.
    func processEnded() {
        guard failed == nil else { return }
        platter.durable = stored(image)
    }

    /// What the platter keeps of `image`.
    private func stored(_ image: Image) -> Image {
        var image = image
        if platter.forgetsVotes { image.hardState.vote = 0 }
        return image
    }

    private func error(_ fault: Fault) -> any Error {
        switch fault {
        case .ioError: LMDBError(code: EIO, operation: "mdb_txn_commit", path: path)
        case .full: LMDBError(code: ENOSPC, operation: "mdb_txn_commit", path: path)
        case .powerLoss: PowerLoss()
        }
    }

    /// The process died in a write (the simulation drops the replica as it stands).
    struct PowerLoss: Error, CustomStringConvertible {
        var description: String { "the power went during a write" }
    }
}

extension SimulatedDisk.Image {
    /// A new node's log as `Bootstrap.prepare` writes it: one configuration entry per voter,
    /// committed in term 1.
    static func bootstrapped(voters: [NodeID]) -> Self {
        var image = Self()
        image.entries = voters.sorted().enumerated().map { offset, id in
            Entry(index: Index(offset + 1), term: 1, kind: .configuration, data: ConfigurationChange(.addVoter, id).encoded())
        }
        image.hardState = HardState(term: 1, vote: 0, commit: Index(voters.count))
        return image
    }
}
