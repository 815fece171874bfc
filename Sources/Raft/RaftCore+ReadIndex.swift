/// ReadIndex requests waiting for a heartbeat round to confirm leadership, in arrival order.
struct ReadOnlyQueue {
    struct Pending {
        var index: Index
        var context: [UInt8]
        var acks: Set<NodeID>
    }

    var queue: [Pending] = []

    var lastPendingContext: [UInt8]? { queue.last?.context }
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
        serveRead(context)
        return true
    }

    mutating func serveRead(_ context: [UInt8]) {
        if configuration.voters == [id] {
            readStates.append(ReadState(index: log.committed, context: context))
            return
        }
        readOnly.queue.append(.init(index: log.committed, context: context, acks: [id]))
        broadcastHeartbeat(context: context)
    }

    mutating func releasePendingReads() {
        let waiting = pendingReads
        pendingReads = []
        for context in waiting { serveRead(context) }
    }

    /// A heartbeat answer echoed `context`: once a majority did, that request and every
    /// earlier one are confirmed.
    mutating func confirmRead(_ context: [UInt8], from node: NodeID) {
        guard configuration.voters.contains(node),
              let position = readOnly.queue.firstIndex(where: { $0.context == context })
        else { return }
        readOnly.queue[position].acks.insert(node)
        let acks = readOnly.queue[position].acks.filter { configuration.voters.contains($0) }
        guard acks.count >= configuration.quorum else { return }
        for request in readOnly.queue[...position] {
            readStates.append(ReadState(index: request.index, context: request.context))
        }
        readOnly.queue.removeFirst(position + 1)
    }
}
