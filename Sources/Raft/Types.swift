/// Identifies a server. 0 means "nobody" (no vote, no known leader).
public typealias NodeID = UInt64
public typealias Term = UInt64
public typealias Index = UInt64

/// One log entry. `index` and `term` place it; `data` is opaque to consensus except for
/// configuration entries, whose `data` is an encoded `ConfigurationChange`.
public struct Entry: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// An application command (empty `data`: a new leader's no-op).
        case normal = 0
        /// A single-server membership change.
        case configuration = 1
    }

    public var index: Index
    public var term: Term
    public var kind: Kind
    public var data: [UInt8]

    public init(index: Index, term: Term, kind: Kind = .normal, data: [UInt8] = []) {
        self.index = index
        self.term = term
        self.kind = kind
        self.data = data
    }
}

/// What must be durable before any message that depends on it leaves the node.
public struct HardState: Sendable, Equatable {
    public var term: Term
    public var vote: NodeID
    public var commit: Index

    public init(term: Term = 0, vote: NodeID = 0, commit: Index = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The servers of the cluster: voters decide elections and commits; learners only receive
/// the log until they are promoted.
///
/// Each member may carry a `context`: bytes the core keeps and never reads (the node stores a
/// member's addresses there), so that whoever holds the configuration, from the log or from a
/// snapshot, also knows how to reach its members.
public struct ClusterConfiguration: Sendable, Equatable {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>
    public var contexts: [NodeID: [UInt8]]

    /// Most bytes of one member's context: it travels in every snapshot's metadata.
    public static let maxContextBytes = 1024

    public init(voters: Set<NodeID> = [], learners: Set<NodeID> = [], contexts: [NodeID: [UInt8]] = [:]) {
        self.voters = voters
        self.learners = learners.subtracting(voters)
        self.contexts = contexts.filter { voters.contains($0.key) || learners.contains($0.key) }
    }

    /// Every member in ascending id order: iteration order must not depend on hashing, or two
    /// runs with one seed would differ.
    public var members: [NodeID] { (voters.union(learners)).sorted() }
    public var sortedVoters: [NodeID] { voters.sorted() }
    public var quorum: Int { voters.count / 2 + 1 }
    public var isEmpty: Bool { voters.isEmpty && learners.isEmpty }

    /// Applies one single-server change. A change with a context replaces the member's; one
    /// without keeps it (a promotion need not repeat the addresses).
    public func applying(_ change: ConfigurationChange) -> ClusterConfiguration {
        var next = self
        switch change.kind {
        case .addVoter:
            next.learners.remove(change.node)
            next.voters.insert(change.node)
        case .addLearner:
            next.voters.remove(change.node)
            next.learners.insert(change.node)
        case .remove:
            next.voters.remove(change.node)
            next.learners.remove(change.node)
            next.contexts[change.node] = nil
            return next
        }
        if !change.context.isEmpty { next.contexts[change.node] = change.context }
        return next
    }

    /// `[voter count: 4][voters: 8 each][learner count: 4][learners: 8 each]`, big-endian,
    /// then, when any member has a context, `[count: 4]` and `[id: 8][length: 4][bytes]` each.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        for group in [sortedVoters, learners.sorted()] {
            bytes += withUnsafeBytes(of: UInt32(group.count).bigEndian, Array.init)
            for id in group { bytes += withUnsafeBytes(of: id.bigEndian, Array.init) }
        }
        if !contexts.isEmpty {
            bytes += withUnsafeBytes(of: UInt32(contexts.count).bigEndian, Array.init)
            for id in contexts.keys.sorted() {
                let context = contexts[id]!
                bytes += withUnsafeBytes(of: id.bigEndian, Array.init)
                bytes += withUnsafeBytes(of: UInt32(context.count).bigEndian, Array.init)
                bytes += context
            }
        }
        return bytes
    }

    public init?(encoded bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        var groups: [[NodeID]] = []
        for _ in 0..<2 {
            guard let count = reader.uint32(), Int(count) <= bytes.count / 8 else { return nil }
            var group: [NodeID] = []
            for _ in 0..<count {
                guard let id = reader.uint64() else { return nil }
                group.append(id)
            }
            groups.append(group)
        }
        var contexts: [NodeID: [UInt8]] = [:]
        if !reader.atEnd {
            guard let count = reader.uint32(), Int(count) <= groups[0].count + groups[1].count else { return nil }
            for _ in 0..<count {
                guard let id = reader.uint64(), let length = reader.uint32(), Int(length) <= Self.maxContextBytes,
                      let context = reader.bytes(Int(length)), contexts[id] == nil
                else { return nil }
                contexts[id] = context
            }
        }
        guard reader.atEnd else { return nil }
        self.init(voters: Set(groups[0]), learners: Set(groups[1]), contexts: contexts)
    }
}

/// Add or remove one server: one change at a time keeps every two majorities overlapping.
public struct ConfigurationChange: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case addVoter = 1
        case addLearner = 2
        case remove = 3
    }

    public var kind: Kind
    public var node: NodeID
    /// Opaque to the core; kept as the member's context (see `ClusterConfiguration`).
    public var context: [UInt8]

    public init(_ kind: Kind, _ node: NodeID, context: [UInt8] = []) {
        self.kind = kind
        self.node = node
        self.context = context
    }

    /// `[kind: 1][node: 8][context…]`.
    public func encoded() -> [UInt8] {
        [kind.rawValue] + withUnsafeBytes(of: node.bigEndian, Array.init) + context
    }

    public init?(encoded bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard let raw = reader.uint8(), let kind = Kind(rawValue: raw), let node = reader.uint64() else { return nil }
        let context = Array(bytes[reader.offset...])
        guard context.count <= ClusterConfiguration.maxContextBytes else { return nil }
        self.init(kind, node, context: context)
    }
}

/// Where a snapshot stands in the log, and the configuration at that point.
public struct SnapshotMetadata: Sendable, Equatable {
    public var index: Index
    public var term: Term
    public var configuration: ClusterConfiguration

    public init(index: Index = 0, term: Term = 0, configuration: ClusterConfiguration = .init()) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// A snapshot: its metadata and the application's state, opaque to consensus.
public struct Snapshot: Sendable, Equatable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }
}

/// A linearizable read may be served once the application applied `index`.
public struct ReadState: Sendable, Equatable {
    public var index: Index
    public var context: [UInt8]

    public init(index: Index, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}

public enum Role: Sendable, Equatable {
    case follower
    case preCandidate
    case candidate
    case leader
}

/// Volatile state worth reporting: who leads, and this node's role.
public struct SoftState: Sendable, Equatable {
    public var leader: NodeID
    public var role: Role
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    mutating func uint8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32() -> UInt32? {
        guard offset + 4 <= bytes.count else { return nil }
        defer { offset += 4 }
        return bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func uint64() -> UInt64? {
        guard offset + 8 <= bytes.count else { return nil }
        defer { offset += 8 }
        return bytes[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, offset + count <= bytes.count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}
