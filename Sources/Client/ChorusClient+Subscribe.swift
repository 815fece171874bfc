import API
import GRPCCore
import Synchronization

/// Where a subscription stands, shared with the response handler of each attempt.
final class SubscriptionCursor: Sendable {
    let lastEvent = Atomic<UInt64>(0)
    /// The current attempt reached the leader and is live.
    let attached = Atomic<Bool>(false)
}

extension ChorusClient {
    /// Live events for the session's user, as an async sequence that outlives leader
    /// changes: when the stream breaks it reconnects to the new leader, resuming after the
    /// last event seen. Received messages are acknowledged (marked delivered) as they arrive,
    /// unless `acknowledge` is false. Ends when the task is cancelled or the session is gone.
    public func subscribe(token: String, acknowledge: Bool = true) -> AsyncThrowingStream<ChatEvent, any Error> {
        AsyncThrowingStream(bufferingPolicy: .unbounded) { continuation in
            let task = Task {
                let cursor = SubscriptionCursor()
                var failures = 0
                while !Task.isCancelled {
                    let target = leader.withLock { $0 }
                    cursor.attached.store(false, ordering: .relaxed)
                    var reason = "the leader ended the stream"
                    do {
                        try await stubs[target].subscribe(.with { $0.token = token; $0.afterEventID = cursor.lastEvent.load(ordering: .relaxed) }) { response in
                            for try await event in response.messages {
                                if case .attached = event.kind { cursor.attached.store(true, ordering: .relaxed) }
                                if event.id > 0, case .messageReceived = event.kind {
                                    cursor.lastEvent.max(event.id, ordering: .relaxed)
                                }
                                guard let mapped = Self.map(event) else { continue }
                                continuation.yield(mapped)
                                if acknowledge, case let .message(message) = mapped {
                                    _ = try? await self.acknowledge(token: token, ids: [message.id])
                                }
                            }
                        }
                    } catch let error as RPCError where error.code == .unavailable || error.code == .deadlineExceeded {
                        reason = error.message
                        follow(hint: error.metadata, after: target)
                    } catch let error as RPCError where error.code == .resourceExhausted && error.metadata[stringValues: MetadataKeys.resumeAfter].contains(where: { _ in true }) {
                        // Cut off for reading too slowly: attach again after the last event
                        // seen; undelivered messages are replayed, so nothing is lost.
                        reason = error.message
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
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func map(_ event: Chorus_V1_Event) -> ChatEvent? {
        switch event.kind {
        case let .attached(a)?: .attached(unreadCount: a.unreadCount)
        case let .messageReceived(m)?: .message(ChatMessage(m))
        case let .messagesDeleted(d)?: .messagesDeleted(d.ids)
        case let .accountCreated(name)?: .accountCreated(name)
        case let .accountDeleted(name)?: .accountDeleted(name)
        case nil: nil
        }
    }
}
