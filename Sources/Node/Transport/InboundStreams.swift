import Raft
import Synchronization

/// Counts the peer streams open to this node, by sender, so that only the end of a peer's
/// last stream is taken for its loss.
///
/// A follower that hears its leader's stream end drops the leader's lease and campaigns soon
/// (`RaftCore.connectionLost`): when the process died, that saves most of an election timeout.
/// But a peer's link replaces its stream now and then (a reset, a refused batch, a restarted
/// link), and the old stream can be torn down after the new one already delivers. Taking that
/// for the leader's loss opened the follower's vote to any server cut off from the leader,
/// which could then depose a healthy leader. The count keeps the report for the stream that
/// was the leader's last.
final class InboundStreams: Sendable {
    private let open = Mutex<[NodeID: Int]>([:])

    /// A stream from `peer` began.
    func opened(_ peer: NodeID) {
        open.withLock { $0[peer, default: 0] += 1 }
    }

    /// A stream from `peer` ended; whether it was the last one open.
    func closed(_ peer: NodeID) -> Bool {
        open.withLock { open in
            let left = (open[peer] ?? 1) - 1
            open[peer] = left > 0 ? left : nil
            return left <= 0
        }
    }

    func count(_ peer: NodeID) -> Int {
        open.withLock { $0[peer] ?? 0 }
    }
}
