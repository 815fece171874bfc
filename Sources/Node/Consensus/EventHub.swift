import Projections
import Synchronization

/// Fans applied events out to the subscription streams attached to this node.
public final class EventHub: Sendable {
    /// An event and the log index that caused it.
    public struct Delivery: Sendable {
        public var index: UInt64
        public var event: ChatEvent
    }

    /// Ends every stream: leadership moved, so clients must re-attach to the new leader.
    public enum Closure: Error, Sendable {
        case leadershipLost
        case shuttingDown
    }

    private struct Subscriber {
        var userID: UInt64
        var name: String
        var continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
    }

    private let subscribers = Mutex<[UInt64: Subscriber]>([:])

    public init() {}

    /// Registers a stream for `userID`; events are buffered until read.
    public func subscribe(id: UInt64, userID: UInt64, name: String) -> AsyncThrowingStream<Delivery, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        subscribers.withLock { $0[id] = Subscriber(userID: userID, name: name, continuation: continuation) }
        return stream
    }

    public func unsubscribe(id: UInt64) {
        let removed = subscribers.withLock { $0.removeValue(forKey: id) }
        removed?.continuation.finish()
    }

    /// Sends `event` to the streams it concerns.
    func publish(index: UInt64, event: ChatEvent) {
        let targets: [AsyncThrowingStream<Delivery, any Error>.Continuation] = subscribers.withLock { all in
            all.values.filter { subscriber in
                switch event {
                case let .messageSent(message): subscriber.userID == message.recipientID
                case let .messagesDeleted(_, participants): participants.contains(subscriber.name)
                case .accountCreated, .accountDeleted: true
                }
            }.map(\.continuation)
        }
        for continuation in targets {
            continuation.yield(Delivery(index: index, event: event))
        }
    }

    func closeAll(_ reason: Closure) {
        let all = subscribers.withLock { all in
            defer { all = [:] }
            return Array(all.values)
        }
        for subscriber in all { subscriber.continuation.finish(throwing: reason) }
    }
}
