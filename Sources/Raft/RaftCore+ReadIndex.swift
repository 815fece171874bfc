/// Linearizable reads waiting for a heartbeat round that confirms this server still leads.
///
/// One round is out at a time. Reads that arrive while it is out wait, and all of them share
/// the next round: a thousand concurrent reads cost the followers a few heartbeats, not a
/// thousand (etcd's server batches its ReadIndex requests the same way in its read loop).
/// A read that waited is no less linearizable: its round starts after it arrived, and its read
/// index is the commit index when the round starts, which is no lower than when it arrived.
struct ReadOnlyQueue {
    struct Round {
        /// The commit index when the round started: every read it serves may be answered once
        /// that index is applied.
        var index: Index
        /// The reads the round serves, in arrival order; never empty. The last one names the
        /// round on the wire.
        var contexts: [[UInt8]]
        var acks: Set<NodeID>

        var key: [UInt8] { contexts[contexts.count - 1] }
    }

    /// The round whose heartbeats are out, if any.
    var inFlight: Round?
    /// Reads that arrived while `inFlight` was out, for the next round.
    var waiting: [[UInt8]] = []

    /// What heartbeats carry, so that a heartbeat sent on a tick also confirms the round when
    /// the first one was lost.
    var lastPendingContext: [UInt8]? { inFlight?.key }
}

extension RaftCore {
    /// Asks for a linearizable read point. When the leader confirms it still leads, a
    /// `ReadState` with the commit index appears in a `Ready`; the read is served once the
    /// application has applied that index. Returns false when this server is not the leader.
    @discardableResult
    public mutating func readIndex(context: [UInt8]) -> Bool {
        guard role == .leader else { return false }
        // Until an entry of this term commits, the commit index may lag what earlier leaders
        // committed: wait for it.
        guard log.term(at: log.committed) == term else {
            pendingReads.append(context)
            return true
        }
        serveReads([context])
        return true
    }

    mutating func serveReads(_ contexts: [[UInt8]]) {
        guard !contexts.isEmpty else { return }
        if configuration.voters == [id] {
            serveAlone(contexts)
            return
        }
        if readOnly.inFlight == nil {
            startReadRound(contexts)
        } else {
            readOnly.waiting += contexts
        }
    }

    /// The only voter confirms itself. Reads still waiting on a round that began under a larger
    /// configuration would hear from nobody now: they are served too.
    mutating func serveAlone(_ contexts: [[UInt8]] = []) {
        let stranded = (readOnly.inFlight?.contexts ?? []) + readOnly.waiting
        readOnly = ReadOnlyQueue()
        for context in stranded + contexts {
            readStates.append(ReadState(index: log.committed, context: context))
        }
    }

    private mutating func startReadRound(_ contexts: [[UInt8]]) {
        let round = ReadOnlyQueue.Round(index: log.committed, contexts: contexts, acks: [id])
        readOnly.inFlight = round
        broadcastHeartbeat(context: round.key)
    }

    mutating func releasePendingReads() {
        let waiting = pendingReads
        pendingReads = []
        serveReads(waiting)
    }

    /// A heartbeat answer echoed `context`: once a majority of voters did for the round out,
    /// every read of that round is confirmed, and the reads that waited start the next one.
    mutating func confirmRead(_ context: [UInt8], from node: NodeID) {
        guard configuration.voters.contains(node), var round = readOnly.inFlight, round.key == context else { return }
        round.acks.insert(node)
        readOnly.inFlight = round
        guard round.acks.filter({ configuration.voters.contains($0) }).count >= configuration.quorum else { return }
        for context in round.contexts {
            readStates.append(ReadState(index: round.index, context: context))
        }
        readOnly.inFlight = nil
        let next = readOnly.waiting
        readOnly.waiting = []
        serveReads(next)
    }
}
