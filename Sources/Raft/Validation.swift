/// Bounds on what a peer's message may carry. A message outside them is refused before it
/// changes anything: no value from the network can make the core trap on arithmetic, and no
/// absurd term or index is ever persisted, where it would poison the data directory.
public struct MessageLimits: Sendable, Equatable {
    /// The largest term or index any message may name. 2^62 leaves room for every `+ 1`
    /// the core does, and is out of reach: a million elections a second would take 146,000
    /// years to get there.
    public var maxValue: UInt64 = 1 << 62
    /// How far past this server's own term a message may be. With pre-vote a term grows by
    /// one per real election; a jump of millions is a bug or a lie, not a partition.
    public var maxTermStep: UInt64 = 1 << 24
    /// Entries in one AppendEntries.
    public var maxEntries: Int = 65_536
    /// Entry bytes in one AppendEntries (the sender's own `maxMessageBytes` is far below).
    public var maxAppendBytes: Int = 64 << 20
    /// ReadIndex contexts on every honest sender: a leader's round is a counter (8 bytes), a
    /// follower's forwarded read its incarnation and a counter (16, `ForwardedReads`).
    public var maxContextBytes: Int = 64
    /// Members named in a snapshot's configuration.
    public var maxMembers: Int = 1_024
    /// Bytes of an in-message snapshot's data (the node ships its snapshots as files instead).
    public var maxSnapshotBytes: Int = 64 << 20

    public init() {}
}

/// Why the core refused a message without acting on it. The application counts and logs
/// refusals by sender: an honest peer never causes one.
public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message is for another server.
    case misaddressed(to: NodeID)
    /// The sender is 0 or this server itself. Whether it is a member is the transport's
    /// question: Raft lets a server vote for, and follow, members its own configuration does
    /// not know yet (dissertation §4.2.3), so the core cannot refuse them.
    case unknownSender
    /// The term is beyond `maxValue`, or further past ours than `maxTermStep`.
    case termOutOfRange(Term)
    /// An index (or a term inside the payload) that no honest sender could name.
    case outOfRange(field: String, value: UInt64)
    /// An AppendEntries whose entries are not consecutive after `prevIndex`, have terms out of
    /// order, or carry an unreadable configuration change.
    case malformedEntries(String)
    /// More entries, bytes or members than the limits allow.
    case tooLarge(field: String, size: Int, limit: Int)
    /// A leader's entries that would overwrite what this server knows is committed.
    case conflictsWithCommitted(index: Index, committed: Index)
    /// A snapshot whose configuration has no voters or names server 0.
    case invalidConfiguration
    /// The wire form could not be read into a message (the application's decoder says why).
    case malformed(String)

    public var description: String {
        switch self {
        case let .misaddressed(to): "addressed to server \(to)"
        case .unknownSender: "sender is not a member"
        case let .termOutOfRange(term): "term \(term) is out of range"
        case let .outOfRange(field, value): "\(field) \(value) is out of range"
        case let .malformedEntries(why): "malformed entries: \(why)"
        case let .tooLarge(field, size, limit): "\(field) \(size) exceeds \(limit)"
        case let .conflictsWithCommitted(index, committed): "entry \(index) conflicts with the committed log (committed \(committed))"
        case .invalidConfiguration: "snapshot configuration is invalid"
        case let .malformed(why): "malformed: \(why)"
        }
    }

    /// A short stable name, for counting refusals by kind.
    public var reason: String {
        switch self {
        case .misaddressed: "misaddressed"
        case .unknownSender: "unknown_sender"
        case .termOutOfRange: "term_out_of_range"
        case .outOfRange: "out_of_range"
        case .malformedEntries: "malformed_entries"
        case .tooLarge: "too_large"
        case .conflictsWithCommitted: "conflicts_with_committed"
        case .invalidConfiguration: "invalid_configuration"
        case .malformed: "malformed"
        }
    }
}

extension RaftCore {
    /// Checks `m` against the limits and what this server knows, without changing anything.
    /// `step` calls it first; the application may call it too, to refuse before queueing.
    public func validate(_ m: Message) -> Refusal? {
        let limits = options.limits
        guard m.to == id else { return .misaddressed(to: m.to) }
        guard m.from != 0, m.from != id else { return .unknownSender }
        guard m.term <= limits.maxValue, m.term <= term &+ min(limits.maxTermStep, limits.maxValue) else {
            return .termOutOfRange(m.term)
        }
        switch m.kind {
        case let .preVote(lastIndex, lastTerm), let .vote(lastIndex, lastTerm, _):
            if let refusal = Self.bounded("lastIndex", lastIndex, limits) { return refusal }
            // A candidate's log cannot hold an entry of a term after the one it campaigns in.
            guard lastTerm <= m.term else { return .outOfRange(field: "lastTerm", value: lastTerm) }
        case .preVoteResponse, .voteResponse, .timeoutNow:
            break
        case let .append(prevIndex, prevTerm, entries, commit):
            return validateAppend(m, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case let .appendResponse(index, _, hintIndex, hintTerm):
            if let refusal = Self.bounded("index", index, limits) ?? Self.bounded("hintIndex", hintIndex, limits) { return refusal }
            guard hintTerm <= m.term else { return .outOfRange(field: "hintTerm", value: hintTerm) }
            // An answer of this term answers an AppendEntries of this leader, which never sent
            // anything past its last index: a larger one is a lie that would commit nothing.
            if role == .leader, m.term == term, index > log.lastIndex || hintIndex > log.lastIndex {
                return .outOfRange(field: "index", value: max(index, hintIndex))
            }
        case let .heartbeat(commit, context):
            if let refusal = Self.bounded("commit", commit, limits) { return refusal }
            if let context, context.count > limits.maxContextBytes {
                return .tooLarge(field: "context", size: context.count, limit: limits.maxContextBytes)
            }
        case let .heartbeatResponse(context):
            if let context, context.count > limits.maxContextBytes {
                return .tooLarge(field: "context", size: context.count, limit: limits.maxContextBytes)
            }
        case let .readIndex(context):
            if context.count > limits.maxContextBytes {
                return .tooLarge(field: "context", size: context.count, limit: limits.maxContextBytes)
            }
        case let .readIndexResponse(index, context):
            if let refusal = Self.bounded("read index", index, limits) { return refusal }
            if context.count > limits.maxContextBytes {
                return .tooLarge(field: "context", size: context.count, limit: limits.maxContextBytes)
            }
        case let .snapshot(snapshot):
            let meta = snapshot.metadata
            if let refusal = Self.bounded("snapshot index", meta.index, limits) { return refusal }
            guard meta.term <= m.term, meta.index == 0 || meta.term > 0 else { return .outOfRange(field: "snapshot term", value: meta.term) }
            guard snapshot.data.count <= limits.maxSnapshotBytes else {
                return .tooLarge(field: "snapshot bytes", size: snapshot.data.count, limit: limits.maxSnapshotBytes)
            }
            return Self.validate(meta.configuration, limits)
        }
        return nil
    }

    /// A configuration a server could run with: voters, no server 0, a bounded size.
    public static func validate(_ configuration: ClusterConfiguration, _ limits: MessageLimits) -> Refusal? {
        let count = configuration.voters.count + configuration.learners.count
        guard count <= limits.maxMembers else { return .tooLarge(field: "members", size: count, limit: limits.maxMembers) }
        guard !configuration.voters.isEmpty, !configuration.voters.contains(0), !configuration.learners.contains(0) else {
            return .invalidConfiguration
        }
        return nil
    }

    private func validateAppend(_ m: Message, prevIndex: Index, prevTerm: Term, entries: [Entry], commit: Index) -> Refusal? {
        let limits = options.limits
        guard entries.count <= limits.maxEntries else {
            return .tooLarge(field: "entries", size: entries.count, limit: limits.maxEntries)
        }
        if let refusal = Self.bounded("prevIndex", prevIndex, limits) ?? Self.bounded("commit", commit, limits) {
            return refusal
        }
        // prevIndex is within 2^62 and the count within 2^16: the sum cannot overflow.
        if let refusal = Self.bounded("last entry index", prevIndex + Index(entries.count), limits) { return refusal }
        guard prevTerm <= m.term else { return .outOfRange(field: "prevTerm", value: prevTerm) }
        var bytes = 0
        var expected = prevIndex + 1
        var previousTerm = prevTerm
        for entry in entries {
            guard entry.index == expected else {
                return .malformedEntries("entry \(entry.index) where \(expected) was due")
            }
            guard entry.term >= previousTerm, entry.term <= m.term else {
                return .malformedEntries("entry \(entry.index) has term \(entry.term) after \(previousTerm) in a message of term \(m.term)")
            }
            if entry.kind == .configuration {
                guard let change = ConfigurationChange(encoded: entry.data), change.node != 0 else {
                    return .malformedEntries("entry \(entry.index) holds no valid configuration change")
                }
            }
            bytes += entry.data.count
            guard bytes <= limits.maxAppendBytes else {
                return .tooLarge(field: "entry bytes", size: bytes, limit: limits.maxAppendBytes)
            }
            expected += 1
            previousTerm = entry.term
        }
        return nil
    }

    private static func bounded(_ field: String, _ value: UInt64, _ limits: MessageLimits) -> Refusal? {
        value <= limits.maxValue ? nil : .outOfRange(field: field, value: value)
    }
}
