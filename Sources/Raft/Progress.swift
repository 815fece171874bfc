/// The leader's view of one follower's log.
struct Progress {
    enum State: Equatable {
        /// Unsure where the follower's log ends: one AppendEntries at a time, then wait.
        case probe
        /// Known to match: stream AppendEntries optimistically, up to the in-flight window.
        case replicate
        /// Too far behind: a snapshot at `pending` is on its way.
        case snapshot(pending: Index)
    }

    var match: Index = 0
    var next: Index
    var state: State = .probe
    /// In probe state: an AppendEntries is outstanding, wait for its answer or a heartbeat.
    var probeSent = false
    var inflights: Inflights
    /// Heard from within the current election timeout (check-quorum).
    var recentActive = false
    /// Ticks spent in snapshot state, to retry a snapshot that was lost.
    var snapshotTicks = 0

    init(next: Index, window: Int) {
        self.next = next
        inflights = Inflights(capacity: window)
    }

    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflights.isFull
        case .snapshot: true
        }
    }

    mutating func becomeProbe() {
        if case let .snapshot(pending) = state {
            next = max(match + 1, pending + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        inflights.reset()
    }

    mutating func becomeSnapshot(_ index: Index) {
        state = .snapshot(pending: index)
        probeSent = false
        snapshotTicks = 0
        inflights.reset()
    }

    /// A successful response up to `index`. Returns whether `match` moved.
    mutating func maybeUpdate(_ index: Index) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        return updated
    }

    /// A rejection of the AppendEntries whose previous index was `rejected`; `hint` is where
    /// the follower's log may start to agree. Returns false for a stale rejection.
    mutating func maybeDecrease(rejected: Index, hint: Index) -> Bool {
        if state == .replicate {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, hint + 1), match + 1, 1)
        probeSent = false
        return true
    }

    /// Records that entries up to `last` were sent.
    mutating func sent(count: Int, last: Index) {
        switch state {
        case .replicate:
            if count > 0 {
                next = last + 1
                inflights.add(last)
            }
        case .probe:
            probeSent = true
        case .snapshot:
            break
        }
    }
}

/// The last index of each AppendEntries in flight to one follower, oldest first; bounded so
/// a slow follower cannot make the leader buffer without end.
struct Inflights {
    let capacity: Int
    private var buffer: [Index] = []
    private var start = 0

    init(capacity: Int) {
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    var count: Int { buffer.count - start }
    var isFull: Bool { count >= capacity }

    mutating func add(_ index: Index) {
        buffer.append(index)
    }

    /// Frees the oldest message: a heartbeat answer shows the follower is alive, so one more
    /// AppendEntries may go out even if earlier ones were lost with nobody left to answer.
    mutating func freeFirst() {
        if start < buffer.count { start += 1 }
    }

    /// Frees every message whose last index is ≤ `index` (acknowledged).
    mutating func free(upTo index: Index) {
        while start < buffer.count && buffer[start] <= index { start += 1 }
        if start > 64 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }

    mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        start = 0
    }
}
