import Raft

/// A node's view of the cluster at one moment.
public struct ReplicaStatus: Sendable {
    public struct Member: Sendable {
        public var id: NodeID
        public var voter: Bool
        /// Known only on the leader.
        public var matchIndex: Index
        /// Heard from lately; known only on the leader.
        public var active: Bool = false
    }

    public var id: NodeID
    public var role: Role
    public var term: Term
    public var leader: NodeID
    public var commitIndex: Index
    public var appliedIndex: Index
    public var lastIndex: Index
    /// Peer messages refused since the node started.
    public var refusedPeerMessages: UInt64
    public var members: [Member]
}
