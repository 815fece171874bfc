import API
import GRPCCore
import Synchronization

/// Where a subscription stands, shared with the response handler of each attempt.
final class SubscriptionCursor: Sendable {
    let lastEvent = Atomic<UInt64>(0)
    let failures = Atomic<Int>(0)
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
                while !Task.isCancelled {
                    do {
                        try await withLeader { stub in
                            try await stub.subscribe(.with { $0.token = token; $0.afterEventID = cursor.lastEvent.load(ordering: .relaxed) }) { response in
                                for try await event in response.messages {
                                    cursor.failures.store(0, ordering: .relaxed)
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
                        }
                        // The server ended the stream cleanly (it is shutting down): re-attach.
                        continuation.yield(.reconnecting("the stream ended"))
                    } catch let error as ChorusError {
                        if case .clusterUnavailable = error {
                            continuation.yield(.reconnecting(error.description))
                        } else {
                            continuation.finish(throwing: error)
                            return
                        }
                    } catch is CancellationError {
                        break
                    } catch {
                        continuation.yield(.reconnecting("\(error)"))
                    }
                    let failures = cursor.failures.add(1, ordering: .relaxed).newValue
                    try? await Task.sleep(for: .milliseconds(min(1000, 50 * failures)))
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
