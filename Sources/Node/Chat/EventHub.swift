import Projections
import Synchronization

/// Fans applied events out to the subscription streams attached to this node.
///
/// Every stream's buffer is bounded in events and in bytes: a subscriber that stops reading
/// is cut off with `Closure.overflow` (its client resumes from its last event, losing
/// nothing: undelivered messages are replayed on attach) instead of holding memory or
/// silently missing events. Streams are indexed by user, so publishing a message touches only
/// its recipient's streams, and each user has at most `Limits.streamsPerUser` of them.
public final class EventHub: Sendable {
    /// An event and the log index that caused it.
    public struct Delivery: Sendable {
        public var index: UInt64
        public var event: ChatEvent

        /// What the delivery holds in a buffer, roughly: a message's body and a fixed part.
        var bytes: Int {
            switch event {
            case let .messageSent(message): 128 + message.body.utf8.count + message.sender.utf8.count + message.recipient.utf8.count
            case let .messagesDeleted(ids, _): 128 + 8 * ids.count
            case let .messageEdited(message): 128 + message.body.utf8.count + message.sender.utf8.count + message.recipient.utf8.count
            case let .groupMessageSent(message, _), let .groupMessageEdited(message, _):
                128 + message.body.utf8.count + message.sender.utf8.count + message.group.utf8.count
            case let .groupChanged(message, _):
                128 + message.group.utf8.count + message.change.members.reduce(0) { $0 + 16 + $1.utf8.count }
            case .accountCreated, .accountDeleted, .presence, .clusterVersionRaised: 128
            case let .sessionsEnded(hashes): 128 + 32 * hashes.count
            }
        }
    }

    public struct Limits: Sendable {
        /// Events one stream may have waiting to be written.
        public var events = 1_024
        /// Bytes of those events.
        public var bytes = 4 << 20
        /// Streams one user may have open on this node.
        public var streamsPerUser = 16

        public init() {}
    }

    /// Why a stream ended.
    public enum Closure: Error, Sendable {
        /// Leadership moved: clients must re-attach to the new leader.
        case leadershipLost
        case shuttingDown
        /// The session the stream acts for ended: logged out, expired, or its account deleted.
        case sessionEnded
        /// The reader fell behind by more than the limits allow.
        case overflow(Limits)
    }

    /// Why a stream was not opened.
    public struct TooManyStreams: Error, Sendable {
        public var limit: Int
    }

    private struct Subscriber {
        var userID: UInt64
        var name: String
        var tokenHash: [UInt8]
        var continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        var waitingEvents = 0
        var waitingBytes = 0
    }

    private struct State {
        var subscribers: [UInt64: Subscriber] = [:]
        /// Subscription ids by user id.
        var byUser: [UInt64: Set<UInt64>] = [:]
        /// User ids by name: a deletion names its participants.
        var userIDs: [String: UInt64] = [:]
        /// Subscription ids by the hash of their session's token.
        var bySession: [[UInt8]: Set<UInt64>] = [:]

        mutating func remove(_ id: UInt64) -> Subscriber? {
            guard let subscriber = subscribers.removeValue(forKey: id) else { return nil }
            bySession[subscriber.tokenHash]?.remove(id)
            if bySession[subscriber.tokenHash]?.isEmpty == true { bySession[subscriber.tokenHash] = nil }
            byUser[subscriber.userID]?.remove(id)
            if byUser[subscriber.userID]?.isEmpty == true {
                byUser[subscriber.userID] = nil
                userIDs[subscriber.name] = nil
            }
            return subscriber
        }
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Registers a stream for `userID`. Its events wait in the stream until read; the reader
    /// reports each one it has written with `written(id:_:)`.
    public func subscribe(id: UInt64, userID: UInt64, name: String, tokenHash: [UInt8]) throws(TooManyStreams) -> AsyncThrowingStream<Delivery, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let limit = limits.streamsPerUser
        let admitted = state.withLock { state in
            guard state.byUser[userID, default: []].count < limit else { return false }
            state.subscribers[id] = Subscriber(userID: userID, name: name, tokenHash: tokenHash, continuation: continuation)
            state.byUser[userID, default: []].insert(id)
            state.bySession[tokenHash, default: []].insert(id)
            state.userIDs[name] = userID
            return true
        }
        guard admitted else {
            continuation.finish()
            throw TooManyStreams(limit: limit)
        }
        return stream
    }

    public func unsubscribe(id: UInt64) {
        let removed = state.withLock { $0.remove(id) }
        removed?.continuation.finish()
    }

    /// Ends stream `id` with `reason`.
    public func end(id: UInt64, _ reason: Closure) {
        let removed = state.withLock { $0.remove(id) }
        removed?.continuation.finish(throwing: reason)
    }

    /// The reader of stream `id` has written `delivery`: it no longer counts against the
    /// stream's buffer.
    public func written(id: UInt64, _ delivery: Delivery) {
        let bytes = delivery.bytes
        state.withLock { state in
            guard var subscriber = state.subscribers[id] else { return }
            subscriber.waitingEvents -= 1
            subscriber.waitingBytes -= bytes
            state.subscribers[id] = subscriber
        }
    }

    /// The streams open for `userID`.
    /// Subscriptions open on this node.
    public var count: Int { state.withLock { $0.subscribers.count } }

    public func streams(of userID: UInt64) -> Int {
        state.withLock { $0.byUser[userID]?.count ?? 0 }
    }

    /// Sends `event` to the streams it concerns; cuts off those with no room for it.
    func publish(index: UInt64, event: ChatEvent) {
        if case let .sessionsEnded(hashes) = event { return endSessions(hashes) }
        let delivery = Delivery(index: index, event: event)
        let bytes = delivery.bytes
        let limits = self.limits
        var targets: [AsyncThrowingStream<Delivery, any Error>.Continuation] = []
        var overflowed: [AsyncThrowingStream<Delivery, any Error>.Continuation] = []
        state.withLock { state in
            let ids: [UInt64] = switch event {
            case let .messageSent(message): Array(state.byUser[message.recipientID] ?? [])
            case let .messageEdited(message):
                Array((state.byUser[message.recipientID] ?? []).union(state.byUser[message.senderID] ?? []))
            case let .messagesDeleted(_, participants):
                Array(Set(participants.compactMap { state.userIDs[$0] }.flatMap { state.byUser[$0] ?? [] }))
            case let .groupMessageSent(_, audience), let .groupChanged(_, audience), let .groupMessageEdited(_, audience):
                audience.flatMap { state.byUser[$0] ?? [] }
            case .accountCreated, .accountDeleted, .presence: Array(state.subscribers.keys)
            case .sessionsEnded, .clusterVersionRaised: []
            }
            for id in ids {
                guard var subscriber = state.subscribers[id] else { continue }
                if subscriber.waitingEvents + 1 > limits.events || subscriber.waitingBytes + bytes > limits.bytes {
                    if let removed = state.remove(id) { overflowed.append(removed.continuation) }
                    continue
                }
                subscriber.waitingEvents += 1
                subscriber.waitingBytes += bytes
                state.subscribers[id] = subscriber
                targets.append(subscriber.continuation)
            }
        }
        for continuation in targets { continuation.yield(delivery) }
        for continuation in overflowed { continuation.finish(throwing: Closure.overflow(limits)) }
    }

    /// Ends every stream of the sessions `hashes`, at once: a stolen token's stream stops
    /// reading the moment its owner logs out.
    func endSessions(_ hashes: [[UInt8]]) {
        let ended = state.withLock { state in
            hashes.flatMap { state.bySession[$0] ?? [] }.compactMap { state.remove($0) }
        }
        for subscriber in ended { subscriber.continuation.finish(throwing: Closure.sessionEnded) }
    }

    func closeAll(_ reason: Closure) {
        let all = state.withLock { state in
            defer { state = State() }
            return Array(state.subscribers.values)
        }
        for subscriber in all { subscriber.continuation.finish(throwing: reason) }
    }
}
