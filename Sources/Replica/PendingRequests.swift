import Raft

/// What the Raft loop owes its callers: proposals waiting for their entry to be applied, reads
/// waiting for a heartbeat round and then for their read index to be applied, membership
/// changes waiting for their entry to be applied.
///
/// A value with mutating transitions, each returning the replies that are due; the loop gives
/// them (and counts them in its metrics). Nothing here blocks, reads a clock or touches a
/// thread, so the bookkeeping is tested on its own (`PendingRequestsTests`).
struct PendingRequests<Output> {
    typealias Reply<T> = ReplicaReply<T>

    struct Waiting<T> {
        /// The term the request was taken in: an entry of another term at its index means
        /// leadership changed hands and the request's own entry is gone.
        var term: Term
        var deadline: ContinuousClock.Instant
        var reply: Reply<T>
    }

    /// How a request whose index was applied ends.
    enum Settled<T> {
        /// Its own entry was applied.
        case applied(Reply<T>)
        /// Another leader's entry took its index.
        case superseded(Reply<T>)
    }

    /// Replies of requests that end together (timed out, or all failed at once).
    struct Ended {
        var proposals: [Reply<Output>] = []
        var reads: [Reply<Void>] = []
        var membershipChanges: [Reply<Index>] = []

        var isEmpty: Bool { proposals.isEmpty && reads.isEmpty && membershipChanges.isEmpty }

        func fail(_ error: ReplicaError) {
            for reply in proposals { reply(.failure(error)) }
            for reply in reads { reply(.failure(error)) }
            for reply in membershipChanges { reply(.failure(error)) }
        }
    }

    /// A read not yet confirmed, and when the Raft core was last asked for it.
    struct AskedRead {
        var waiting: Waiting<Void>
        var asked: ContinuousClock.Instant
    }

    private var proposals: [Index: Waiting<Output>] = [:]
    /// Reads by the context the Raft core carries for them, until their round is confirmed.
    private var reads: [[UInt8]: AskedRead] = [:]
    /// Reads whose round confirmed leadership, with the index to apply before answering.
    private var confirmedReads: [(index: Index, reply: Reply<Void>)] = []
    private var membershipChanges: [Index: Waiting<Index>] = [:]
    private var readCounter: UInt64 = 0
    /// No deadline of a waiting request is earlier than this (it may be earlier than every
    /// one, once the request that set it is answered): `expire` looks through the tables only
    /// when it has passed, not at every tick.
    private var earliestDeadline: ContinuousClock.Instant?

    var proposalCount: Int { proposals.count }

    // MARK: Taking requests

    mutating func propose(at index: Index, _ waiting: Waiting<Output>) {
        proposals[index] = waiting
        earliestDeadline = min(earliestDeadline ?? waiting.deadline, waiting.deadline)
    }

    /// Takes a read, asked of the core at `now`; returns the context to hand the core with it.
    mutating func read(_ waiting: Waiting<Void>, now: ContinuousClock.Instant) -> [UInt8] {
        readCounter += 1
        let context = withUnsafeBytes(of: readCounter.bigEndian, Array.init)
        reads[context] = AskedRead(waiting: waiting, asked: now)
        earliestDeadline = min(earliestDeadline ?? waiting.deadline, waiting.deadline)
        return context
    }

    /// Gives back a read the core would not take (no leader known to ask).
    mutating func cancelRead(_ context: [UInt8]) -> Reply<Void>? {
        reads.removeValue(forKey: context)?.waiting.reply
    }

    /// Reads not confirmed though asked at or before `cutoff`, to be asked again (a follower's
    /// request to its leader, or the answer, was lost with a broken connection); each counts
    /// as asked at `now`. Asking twice is harmless: the first answer confirms the read and a
    /// later one finds nothing waiting under its context. In the order they were first asked
    /// (their contexts count up), not the table's hash order: a simulation replays a seed only
    /// if the loop sends the same messages in the same order every time.
    mutating func readsToAskAgain(askedBefore cutoff: ContinuousClock.Instant, now: ContinuousClock.Instant) -> [[UInt8]] {
        var again: [[UInt8]] = []
        for (context, read) in reads where read.asked <= cutoff {
            reads[context]?.asked = now
            again.append(context)
        }
        return again.sorted { $0.lexicographicallyPrecedes($1) }
    }

    mutating func changeMembership(at index: Index, _ waiting: Waiting<Index>) {
        membershipChanges[index] = waiting
        earliestDeadline = min(earliestDeadline ?? waiting.deadline, waiting.deadline)
    }

    // MARK: Events

    /// The core confirmed leadership for these reads: each is served once its index is applied.
    mutating func confirm(_ states: [ReadState]) {
        for state in states {
            guard let read = reads.removeValue(forKey: state.context) else { continue }
            confirmedReads.append((state.index, read.waiting.reply))
        }
    }

    /// Reads that may be answered now that `applied` is applied, in the order confirmed.
    mutating func readsServed(upTo applied: Index) -> [Reply<Void>] {
        guard !confirmedReads.isEmpty else { return [] }
        let served = confirmedReads.filter { $0.index <= applied }.map(\.reply)
        confirmedReads.removeAll { $0.index <= applied }
        return served
    }

    /// The entry at `index`, of `term`, was applied: the proposal waiting there, if any.
    mutating func proposalApplied(at index: Index, term: Term?) -> Settled<Output>? {
        guard let waiting = proposals.removeValue(forKey: index) else { return nil }
        return term == waiting.term ? .applied(waiting.reply) : .superseded(waiting.reply)
    }

    /// The configuration entry at `index`, of `term`, was applied: the change waiting there.
    mutating func membershipApplied(at index: Index, term: Term?) -> Settled<Index>? {
        guard let waiting = membershipChanges.removeValue(forKey: index) else { return nil }
        return term == waiting.term ? .applied(waiting.reply) : .superseded(waiting.reply)
    }

    /// Requests whose deadline passed before `now`: their outcome is unknown to the caller. A
    /// confirmed read only waits for its index to be applied, which it will be: it stays.
    ///
    /// Each kind is answered in the order it was asked (log order, or the order of the reads'
    /// contexts): a hash table's order would differ from run to run, and a simulation would
    /// not replay from its seed.
    mutating func expire(now: ContinuousClock.Instant) -> Ended {
        guard let earliest = earliestDeadline, earliest < now else { return Ended() }
        let remaining = proposals.values.lazy.map(\.deadline).filter { $0 >= now }.min()
        let remainingReads = reads.values.lazy.map(\.waiting.deadline).filter { $0 >= now }.min()
        let remainingChanges = membershipChanges.values.lazy.map(\.deadline).filter { $0 >= now }.min()
        earliestDeadline = [remaining, remainingReads, remainingChanges].compactMap { $0 }.min()
        let proposals = proposals.filter { $0.value.deadline < now }
        let reads = reads.filter { $0.value.waiting.deadline < now }
        let membershipChanges = membershipChanges.filter { $0.value.deadline < now }
        for index in proposals.keys { self.proposals[index] = nil }
        for context in reads.keys { self.reads[context] = nil }
        for index in membershipChanges.keys { self.membershipChanges[index] = nil }
        return Ended(proposals: Self.inOrder(proposals).map(\.reply), reads: Self.inOrder(reads).map(\.waiting.reply),
                     membershipChanges: Self.inOrder(membershipChanges).map(\.reply))
    }

    /// Every request, to be failed at once (leadership lost, the loop stopping), in the order
    /// `expire` answers them.
    mutating func removeAll() -> Ended {
        let ended = Ended(proposals: Self.inOrder(proposals).map(\.reply),
                          reads: Self.inOrder(reads).map(\.waiting.reply) + confirmedReads.map(\.reply),
                          membershipChanges: Self.inOrder(membershipChanges).map(\.reply))
        self = PendingRequests(readCounter: readCounter)
        return ended
    }

    private static func inOrder<Value>(_ requests: [Index: Value]) -> [Value] {
        requests.sorted { $0.key < $1.key }.map(\.value)
    }

    private static func inOrder<Value>(_ requests: [[UInt8]: Value]) -> [Value] {
        requests.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.value)
    }

    private init(readCounter: UInt64) {
        self.readCounter = readCounter
    }

    init() {}
}
