import API
import GRPCCore
import Synchronization

/// Where a subscription stands, shared with the response handler of each attempt.
final class SubscriptionCursor: Sendable {
    let lastEvent = Atomic<UInt64>(0)
    /// The current attempt reached the leader and is live.
    let attached = Atomic<Bool>(false)
}

/// The reader of a subscription left no room for the next event.
struct ReaderBehind: Error {}

/// A subscription's events (`ChorusClient.subscribe`). Taking a message from it is what
/// acknowledges the message, when the subscription acknowledges at all.
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = ChatEvent
    let events: AsyncThrowingStream<ChatEvent, any Error>
    let taken: AsyncStream<UInt64>.Continuation?

    public struct AsyncIterator: AsyncIteratorProtocol {
        var events: AsyncThrowingStream<ChatEvent, any Error>.AsyncIterator
        let taken: AsyncStream<UInt64>.Continuation?

        public mutating func next() async throws -> ChatEvent? {
            let event = try await events.next()
            if case let .message(message)? = event { taken?.yield(message.id) }
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(events: events.makeAsyncIterator(), taken: taken)
    }
}

extension ChorusClient {
    /// Live events for the session's user, as an async sequence that outlives leader
    /// changes: when the stream breaks it reconnects to the new leader, resuming after the
    /// last event seen. Received messages are acknowledged (marked delivered) as the
    /// application takes them from the sequence, not when they reach this process's buffer,
    /// unless `acknowledge` is false: a message buffered and never taken stays waiting. With
    /// `liveOnly`, messages that were waiting when the stream first attached are left for
    /// `readUndelivered`. Ends when the task is cancelled or the session is gone.
    ///
    /// At most `buffer` events wait for the reader. A reader that falls further behind loses
    /// its place the way a slow subscriber does on the node: the stream reattaches after the
    /// last event handed over, and the messages not yet handed over are sent again.
    public func subscribe(token: String, acknowledge: Bool = true, liveOnly: Bool = false, buffer: Int = 1_024) -> Subscription {
        // Ids the application took, for the acknowledger; bounded like the events (an id
        // dropped here only leaves its message waiting, to be delivered again).
        let (taken, takenSink) = AsyncStream<UInt64>.makeStream(bufferingPolicy: .bufferingOldest(max(1, buffer)))
        let events = AsyncThrowingStream<ChatEvent, any Error>(bufferingPolicy: .bufferingOldest(max(1, buffer))) { continuation in
            if acknowledge {
                // Ends once the subscription has ended and what was taken is acknowledged.
                Task { for await id in taken { _ = try? await self.acknowledge(token: token, ids: [id]) } }
            } else {
                takenSink.finish()
            }
            let task = Task {
                let cursor = SubscriptionCursor()
                var failures = 0
                while !Task.isCancelled {
                    let target = leader.withLock { $0 }
                    cursor.attached.store(false, ordering: .relaxed)
                    var reason = "the leader ended the stream"
                    do {
                        let request = Chorus_V1_SubscribeRequest.with {
                            $0.token = token
                            $0.afterEventID = cursor.lastEvent.load(ordering: .relaxed)
                            $0.liveOnly = liveOnly
                        }
                        try await stubs[target].subscribe(request) { response in
                            for try await event in response.messages {
                                if case let .attached(attached) = event.kind {
                                    cursor.attached.store(true, ordering: .relaxed)
                                    if liveOnly { cursor.lastEvent.max(attached.queuedThrough, ordering: .relaxed) }
                                }
                                guard let mapped = Self.map(event) else { continue }
                                if case .dropped = continuation.yield(mapped) { throw ReaderBehind() }
                                guard case .message = mapped else { continue }
                                cursor.lastEvent.max(event.id, ordering: .relaxed)
                            }
                        }
                    } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                        reason = error.message
                        follow(hint: error.metadata, after: target)
                    } catch let error as RPCError where error.code == .resourceExhausted && error.metadata[stringValues: MetadataKeys.resumeAfter].contains(where: { _ in true }) {
                        // Cut off for reading too slowly: attach again after the last event
                        // seen; undelivered messages are replayed, so nothing is lost.
                        reason = error.message
                    } catch is ReaderBehind {
                        reason = "the reader fell more than \(buffer) events behind"
                    } catch let error as RPCError {
                        continuation.finish(throwing: ChorusError(error))
                        return
                    } catch is CancellationError {
                        break
                    } catch {
                        reason = "\(error)"
                        follow(hint: [:], after: target)
                    }
                    if cursor.attached.load(ordering: .relaxed) {
                        // It was live: say so once, then look for the new leader.
                        continuation.yield(.reconnecting(reason))
                        failures = 0
                    }
                    failures += 1
                    try? await Task.sleep(for: .milliseconds(min(500, 20 * failures)))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in
                task.cancel()
                takenSink.finish()
            }
        }
        return Subscription(events: events, taken: acknowledge ? takenSink : nil)
    }

    static func map(_ event: Chorus_V1_Event) -> ChatEvent? {
        switch event.kind {
        case let .attached(a)?: .attached(unreadCount: a.unreadCount)
        case let .messageReceived(m)?: .message(ChatMessage(m))
        case let .messagesDeleted(d)?: .messagesDeleted(d.ids)
        case let .messageEdited(m)?: .messageEdited(ChatMessage(m))
        case let .groupChanged(m)?: .groupChanged(ChatMessage(m))
        case let .accountCreated(name)?: .accountCreated(name)
        case let .accountDeleted(name)?: .accountDeleted(name)
        case let .presence(p)?: .presence(name: p.name, online: p.online)
        case nil: nil
        }
    }
}
