import Raft

/// Why the replica could not carry out a request; the client API turns each into a gRPC
/// status a client can act on.
public enum ReplicaError: Error, Sendable, Equatable {
    /// Writes and linearizable reads go to the leader; `leader` is the one this node knows of.
    case notLeader(leader: NodeID?)
    /// The entry did not commit in time: its outcome is unknown, so retry with the same
    /// request id (the retry is applied at most once).
    case timedOut
    /// Leadership moved while the request waited; retry on the new leader.
    case leadershipLost(leader: NodeID?)
    /// The node is shutting down.
    case stopped
    /// As many proposals (or bytes of them) wait to commit as the node allows; retry shortly.
    case overloaded(proposals: Int, bytes: Int)
    /// As many linearizable reads wait to be served as the node allows; retry shortly.
    case readsOverloaded(reads: Int)
    /// A snapshot could not be taken (the reason, for the operator).
    case snapshotFailed(String)
    /// A membership change or transfer that cannot be done now (the reason, in words).
    case membershipRefused(String)
}
