#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way work is handed between threads here: values pushed from any thread, taken
/// by one consumer (an async task or a dedicated thread) everything-at-once, in arrival order.
///
/// - *Batches.* A consumer takes all that arrived while it was busy in one go: a stream writer
///   passes a batch to one `write(contentsOf:)` and one flush; the Raft loop persists a whole
///   batch of proposals in one fsynced transaction (group commit).
/// - *Bounded.* At `capacity` values a push either is refused (`.refuse`: the caller says no
///   to whoever asked, with a status that means "retry shortly") or pushes out the oldest value
///   (`.dropOldest`: for traffic that is resent anyway, such as Raft messages to a peer that
///   does not read them).
/// - *No spurious turns.* A push wakes the consumer only when it waits, and once: a consumer
///   that is busy finds the values when it comes back, and a waiting one is never woken to
///   find nothing.
///
/// A pthread mutex and condition rather than `Mutex`: the thread consumer sleeps on the
/// condition with a deadline (the Raft loop's next tick).
public final class Mailbox<Value: Sendable>: @unchecked Sendable {
    public enum Overflow: Sendable {
        case refuse
        case dropOldest
    }

    public let capacity: Int
    public let overflow: Overflow

    @usableFromInline let lock: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `lock`.
    @usableFromInline var items: [Value] = []
    @usableFromInline var start = 0
    @usableFromInline var finished = false
    @usableFromInline var threadWaiting = false
    @usableFromInline var taskWaiting = false
    @usableFromInline var dropped = 0
    /// Wakes the async consumer of the moment; holds at most one wake-up. Each consumer
    /// (`Batches` iterator) has its own: a cancelled one's stream ends with it.
    @usableFromInline var taskSignal: AsyncStream<Void>.Continuation?

    public init(capacity: Int, overflow: Overflow = .refuse) {
        precondition(capacity > 0, "a mailbox holds at least one value")
        self.capacity = capacity
        self.overflow = overflow
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if canImport(Glibc)
        // Deadlines on the monotonic clock: a wall-clock step must not stretch a tick.
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    @inlinable
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body()
    }

    @inlinable
    var count: Int { items.count - start }

    /// Adds `value`; false when the mailbox is finished, or full and refusing.
    @inlinable @discardableResult
    public func push(_ value: Value) -> Bool {
        push(contentsOf: CollectionOfOne(value)) == 1
    }

    /// Adds `values` in order; returns how many were taken (all but those a full `.refuse`
    /// mailbox or a finished one turned away).
    @inlinable @discardableResult
    public func push(contentsOf values: some Collection<Value>) -> Int {
        guard !values.isEmpty else { return 0 }
        let (accepted, wake) = locked { () -> (Int, AsyncStream<Void>.Continuation?) in
            guard !finished else { return (0, nil) }
            var accepted = 0
            for value in values {
                if count >= capacity {
                    guard overflow == .dropOldest else { break }
                    start += 1
                    dropped += 1
                }
                items.append(value)
                accepted += 1
            }
            compact()
            guard accepted > 0 else { return (0, nil) }
            if threadWaiting {
                threadWaiting = false
                pthread_cond_signal(condition)
            }
            defer { taskWaiting = false }
            return (accepted, taskWaiting ? taskSignal : nil)
        }
        wake?.yield()
        return accepted
    }

    /// Values pushed out by `.dropOldest` since the mailbox was made.
    public var droppedCount: Int { locked { dropped } }

    /// Values waiting.
    @inlinable
    public var waiting: Int { locked { count } }

    /// Throws away what waits (a link reconnecting does not send stale messages).
    public func removeAll() {
        locked {
            items.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// No more values: the consumer takes what is left, then sees the end. Later pushes are
    /// refused.
    public func finish() {
        let consumer = locked { () -> AsyncStream<Void>.Continuation? in
            finished = true
            pthread_cond_broadcast(condition)
            return taskSignal
        }
        consumer?.finish()
    }

    /// Removes and returns the waiting values, at most `maxWeight` of them by `weight` (but
    /// always one, however heavy), oldest first.
    @inlinable
    func takeLocked(maxWeight: Int, weight: ((Value) -> Int)?) -> [Value] {
        guard count > 0 else { return [] }
        guard let weight else {
            // Everything: hand over the buffer itself rather than a copy.
            var taken: [Value] = []
            swap(&taken, &items)
            if start > 0 { taken.removeFirst(start) }
            start = 0
            return taken
        }
        var total = 0
        var end = start
        while end < items.count {
            total += weight(items[end])
            if end > start && total > maxWeight { break }
            end += 1
        }
        defer {
            start = end
            compact()
        }
        return Array(items[start..<end])
    }

    @inlinable
    func compact() {
        if start == items.count {
            // Keeps the storage: the next batch is about as large as this one.
            items.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 && start * 2 > items.count {
            items.removeFirst(start)
            start = 0
        }
    }

    // MARK: A consumer thread

    /// Waits until values arrive, the mailbox is finished, or `timeout` passes; returns the
    /// values (empty at the deadline), or nil once finished and drained.
    @inlinable
    public func take(waitingAtMost timeout: Duration) -> [Value]? {
        locked { () -> [Value]? in
            if count == 0 && !finished && timeout > .zero {
                var deadline = timespec()
                clock_gettime(CLOCK_MONOTONIC, &deadline)
                let (seconds, attoseconds) = timeout.components
                let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
                deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
                deadline.tv_nsec = nanoseconds % 1_000_000_000
                while count == 0 && !finished {
                    threadWaiting = true
                    if pthread_cond_timedwait(condition, lock, &deadline) == ETIMEDOUT { break }
                }
                threadWaiting = false
            }
            if count > 0 { return takeLocked(maxWeight: .max, weight: nil) }
            return finished ? nil : []
        }
    }

    // MARK: A consumer task

    /// The batches, in arrival order, until the mailbox is finished and drained or the task
    /// is cancelled; at most `maxWeight` by `weight` each (at least one value). For one
    /// consumer at a time.
    @inlinable
    public func batches(maxWeight: Int = .max, weight: (@Sendable (Value) -> Int)? = nil) -> Batches {
        Batches(mailbox: self, maxWeight: maxWeight, weight: weight)
    }

    /// All that waits, in one batch each time.
    public var batches: Batches { batches() }

    /// A new async consumer takes over the wake-ups.
    @usableFromInline
    func register() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (previous, ended) = locked { () -> (AsyncStream<Void>.Continuation?, Bool) in
            defer {
                taskSignal = continuation
                taskWaiting = false
            }
            return (taskSignal, finished)
        }
        previous?.finish()
        if ended { continuation.finish() }
        return stream
    }

    @inlinable
    func nextBatch(maxWeight: Int, weight: ((Value) -> Int)?) -> (items: [Value], finished: Bool) {
        locked {
            let taken = takeLocked(maxWeight: maxWeight, weight: weight)
            // Nothing now: the next push wakes this consumer.
            if taken.isEmpty && !finished { taskWaiting = true }
            return (taken, finished)
        }
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [Value]
        public typealias Failure = Never
        @usableFromInline let mailbox: Mailbox
        @usableFromInline let maxWeight: Int
        @usableFromInline let weight: (@Sendable (Value) -> Int)?

        @usableFromInline
        init(mailbox: Mailbox, maxWeight: Int, weight: (@Sendable (Value) -> Int)?) {
            self.mailbox = mailbox
            self.maxWeight = maxWeight
            self.weight = weight
        }

        @inlinable
        public func makeAsyncIterator() -> Iterator {
            Iterator(mailbox: mailbox, maxWeight: maxWeight, weight: weight, signals: mailbox.register().makeAsyncIterator())
        }

        public struct Iterator: AsyncIteratorProtocol {
            @usableFromInline let mailbox: Mailbox
            @usableFromInline let maxWeight: Int
            @usableFromInline let weight: (@Sendable (Value) -> Int)?
            @usableFromInline var signals: AsyncStream<Void>.Iterator

            @usableFromInline
            init(mailbox: Mailbox, maxWeight: Int, weight: (@Sendable (Value) -> Int)?, signals: AsyncStream<Void>.Iterator) {
                self.mailbox = mailbox
                self.maxWeight = maxWeight
                self.weight = weight
                self.signals = signals
            }

            @inlinable
            public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async -> [Value]? {
                while !Task.isCancelled {
                    let (items, finished) = mailbox.nextBatch(maxWeight: maxWeight, weight: weight)
                    if !items.isEmpty { return items }
                    if finished { return nil }
                    // Returns at a push, at `finish`, or when the task is cancelled.
                    guard await signals.next(isolation: actor) != nil else {
                        let (items, _) = mailbox.nextBatch(maxWeight: maxWeight, weight: weight)
                        return items.isEmpty ? nil : items
                    }
                }
                return nil
            }

            @inlinable
            public mutating func next() async -> [Value]? {
                await next(isolation: nil)
            }
        }
    }
}
