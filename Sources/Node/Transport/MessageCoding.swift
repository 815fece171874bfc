import API
import Foundation
import Raft

/// Raft messages to and from their protobuf form on the wire.
public enum MessageCoding {
    public static func encode(_ m: Message) -> Chorus_V1_RaftMessage {
        var entries: [Index: Chorus_V1_RaftEntry] = [:]
        return encode(m, entries: &entries)
    }

    /// `entries` holds entries already encoded: the leader sends the same entries to every
    /// follower, and each is copied into its protobuf form once.
    static func encode(_ m: Message, entries cache: inout [Index: Chorus_V1_RaftEntry]) -> Chorus_V1_RaftMessage {
        var out = Chorus_V1_RaftMessage()
        out.from = m.from
        out.to = m.to
        out.term = m.term
        switch m.kind {
        case let .preVote(lastIndex, lastTerm):
            out.preVote = .with { $0.lastIndex = lastIndex; $0.lastTerm = lastTerm }
        case let .preVoteResponse(reject):
            out.preVoteResponse = .with { $0.reject = reject }
        case let .vote(lastIndex, lastTerm, transfer):
            out.vote = .with { $0.lastIndex = lastIndex; $0.lastTerm = lastTerm; $0.transfer = transfer }
        case let .voteResponse(reject):
            out.voteResponse = .with { $0.reject = reject }
        case let .append(prevIndex, prevTerm, entries, commit):
            out.append = .with {
                $0.prevIndex = prevIndex
                $0.prevTerm = prevTerm
                $0.commit = commit
                $0.entries = entries.map { entry in
                    if let encoded = cache[entry.index], encoded.term == entry.term { return encoded }
                    let encoded = Chorus_V1_RaftEntry.with { $0.index = entry.index; $0.term = entry.term; $0.kind = UInt32(entry.kind.rawValue); $0.data = Data(entry.data) }
                    cache[entry.index] = encoded
                    return encoded
                }
            }
        case let .appendResponse(index, reject, hintIndex, hintTerm):
            out.appendResponse = .with { $0.index = index; $0.reject = reject; $0.hintIndex = hintIndex; $0.hintTerm = hintTerm }
        case let .heartbeat(commit, context):
            out.heartbeat = .with { $0.commit = commit; $0.hasContext_p = context != nil; $0.context = Data(context ?? []) }
        case let .heartbeatResponse(context):
            out.heartbeatResponse = .with { $0.hasContext_p = context != nil; $0.context = Data(context ?? []) }
        case let .snapshot(snapshot):
            out.snapshot = .with {
                $0.index = snapshot.metadata.index
                $0.term = snapshot.metadata.term
                $0.configuration = Data(snapshot.metadata.configuration.encoded())
                $0.data = Data(snapshot.data)
            }
        case .timeoutNow:
            out.timeoutNow = .init()
        case let .readIndex(context):
            out.readIndex = .with { $0.context = Data(context) }
        case let .readIndexResponse(index, context):
            out.readIndexResponse = .with { $0.index = index; $0.context = Data(context) }
        }
        return out
    }

    /// The message `m` carries, or why it cannot be read: a kind this version does not know,
    /// an entry of unknown kind, an unreadable configuration. The core validates the rest.
    public static func decode(_ m: Chorus_V1_RaftMessage) throws(Refusal) -> Message {
        let kind: Message.Kind
        switch m.kind {
        case let .preVote(v)?: kind = .preVote(lastIndex: v.lastIndex, lastTerm: v.lastTerm)
        case let .preVoteResponse(v)?: kind = .preVoteResponse(reject: v.reject)
        case let .vote(v)?: kind = .vote(lastIndex: v.lastIndex, lastTerm: v.lastTerm, transfer: v.transfer)
        case let .voteResponse(v)?: kind = .voteResponse(reject: v.reject)
        case let .append(v)?:
            var entries: [Entry] = []
            entries.reserveCapacity(v.entries.count)
            for e in v.entries {
                guard let raw = UInt8(exactly: e.kind), let entryKind = Entry.Kind(rawValue: raw) else {
                    throw .malformed("entry \(e.index) is of unknown kind \(e.kind)")
                }
                entries.append(Entry(index: e.index, term: e.term, kind: entryKind, data: Array(e.data)))
            }
            kind = .append(prevIndex: v.prevIndex, prevTerm: v.prevTerm, entries: entries, commit: v.commit)
        case let .appendResponse(v)?:
            kind = .appendResponse(index: v.index, reject: v.reject, hintIndex: v.hintIndex, hintTerm: v.hintTerm)
        case let .heartbeat(v)?: kind = .heartbeat(commit: v.commit, context: v.hasContext_p ? Array(v.context) : nil)
        case let .heartbeatResponse(v)?: kind = .heartbeatResponse(context: v.hasContext_p ? Array(v.context) : nil)
        case let .snapshot(v)?:
            guard let configuration = ClusterConfiguration(encoded: Array(v.configuration)) else {
                throw .malformed("the snapshot's configuration cannot be read")
            }
            kind = .snapshot(Snapshot(metadata: SnapshotMetadata(index: v.index, term: v.term, configuration: configuration), data: Array(v.data)))
        case .timeoutNow?: kind = .timeoutNow
        case let .readIndex(v)?: kind = .readIndex(context: Array(v.context))
        case let .readIndexResponse(v)?: kind = .readIndexResponse(index: v.index, context: Array(v.context))
        case nil: throw .malformed("a message of no kind this version knows")
        }
        return Message(from: m.from, to: m.to, term: m.term, kind: kind)
    }
}
