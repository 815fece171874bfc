/// One entry of the replicated log as the store keeps it. `kind` and `payload` are opaque here:
/// the consensus layer decides what they mean.
public struct LogEntry: Sendable, Equatable {
    public var index: UInt64
    public var term: UInt64
    public var kind: UInt8
    public var payload: [UInt8]

    public init(index: UInt64, term: UInt64, kind: UInt8 = 0, payload: [UInt8]) {
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = payload
    }
}

/// The Raft state that must survive a crash before any message that depends on it is sent.
public struct StoredHardState: Sendable, Equatable {
    public var term: UInt64
    /// The node voted for in `term`, or 0 for none.
    public var vote: UInt64
    /// The highest index known committed; lets a restarted node apply without waiting.
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: UInt64 = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// Where the log was compacted: everything up to `index` lives only in a snapshot.
public struct StoredSnapshot: Sendable, Equatable {
    public var index: UInt64
    public var term: UInt64
    /// The cluster configuration at `index`, encoded by the consensus layer.
    public var configuration: [UInt8]

    public init(index: UInt64 = 0, term: UInt64 = 0, configuration: [UInt8] = []) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// What the log store can report that a caller can act on.
public enum LogStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The bytes under `index` do not match their checksum, or are too short to be an entry.
    case corruptEntry(index: UInt64, path: String)
    /// A batch would leave a hole, or overwrite what a snapshot already covers.
    case notContiguous(expected: ClosedRange<UInt64>, got: UInt64, path: String)
    /// An entry inside the batch does not follow its predecessor.
    case unorderedBatch(at: UInt64)
    /// A stored record other than an entry failed to decode.
    case corruptRecord(name: String, path: String)
    /// The store was written by a newer build, in a format this one does not read.
    case newerFormat(found: UInt32, known: UInt32, path: String)

    public var description: String {
        switch self {
        case let .corruptEntry(index, path):
            "log entry \(index) in \(path) fails its checksum: the replica is damaged; restore it from a peer"
        case let .notContiguous(expected, got, path):
            "log append at \(got) in \(path) would leave a gap or rewrite compacted entries (valid first index: \(expected.lowerBound)...\(expected.upperBound))"
        case let .unorderedBatch(at):
            "log batch is not consecutive at index \(at)"
        case let .corruptRecord(name, path):
            "record \(name) in \(path) is damaged"
        case let .newerFormat(found, known, path):
            "the Raft log in \(path) has format version \(found), newer than this build reads (\(known)): a newer release wrote it; run that release, or restore this data directory from a backup"
        }
    }
}
