/// A message between two servers. Every message carries its sender's term; the payload says
/// what it is.
public struct Message: Sendable, Equatable {
    public var from: NodeID
    public var to: NodeID
    public var term: Term
    public var kind: Kind

    public init(from: NodeID, to: NodeID, term: Term, kind: Kind) {
        self.from = from
        self.to = to
        self.term = term
        self.kind = kind
    }

    public enum Kind: Sendable, Equatable {
        /// "Would you vote for me in `term`?" — asked before bumping any term (pre-vote).
        case preVote(lastIndex: Index, lastTerm: Term)
        case preVoteResponse(reject: Bool)
        /// A real vote request. `transfer` marks a leadership transfer, which voters honour
        /// even while they still hear from the old leader.
        case vote(lastIndex: Index, lastTerm: Term, transfer: Bool)
        case voteResponse(reject: Bool)
        /// AppendEntries.
        case append(prevIndex: Index, prevTerm: Term, entries: [Entry], commit: Index)
        /// `index` is the last index now matching (on success) or the rejected `prevIndex`;
        /// on rejection `hintIndex`/`hintTerm` let the leader skip a whole term per round.
        case appendResponse(index: Index, reject: Bool, hintIndex: Index, hintTerm: Term)
        /// `context` is the pending ReadIndex request being confirmed, if any.
        case heartbeat(commit: Index, context: [UInt8]?)
        case heartbeatResponse(context: [UInt8]?)
        case snapshot(Snapshot)
        /// Leadership transfer: "campaign now".
        case timeoutNow
        /// A follower's linearizable read, forwarded to its leader: "confirm you lead, and
        /// tell me your commit index then". `context` names the read on the follower.
        case readIndex(context: [UInt8])
        /// The leader's answer once a majority confirmed it: the follower may serve the read
        /// when it has applied `index`.
        case readIndexResponse(index: Index, context: [UInt8])
    }

    /// Whether this is a request that starts or answers an election.
    var isVoteRequest: Bool {
        switch kind {
        case .preVote, .vote: true
        default: false
        }
    }
}
