import API
import Foundation
import GRPCCore
import Projections
import Replica

extension ChatService {
    /// Attaches a live stream for the caller on the leader. Order: register for events, mark
    /// the user online (a log entry), send what is undelivered since the client's last event,
    /// then stream. Ends with UNAVAILABLE when leadership moves, so the client re-attaches; with
    /// RESOURCE_EXHAUSTED when the client reads too slowly, so it re-attaches after its last
    /// event. A cancelled call (the client went away) ends at once, and its user is shown
    /// offline as soon as the detach commits.
    func subscribe(request: Chorus_V1_SubscribeRequest, response: RPCWriter<Chorus_V1_Event>, context: ServerContext) async throws {
        let session = try await authenticate(request.token, context)
        let hash = try tokenHash(request.token, context)
        let subscription = UInt64.random(in: 1...UInt64.max)
        let events = replica.machine.events
        let stream: AsyncThrowingStream<EventHub.Delivery, any Error>
        do {
            stream = try events.subscribe(id: subscription, userID: session.userID, name: session.name, tokenHash: hash)
        } catch {
            throw RPCError(code: .resourceExhausted, message: "'\(session.name)' has \(error.limit) live subscriptions on this node, the most it allows; close one first")
        }
        defer {
            events.unsubscribe(id: subscription)
            detach(subscription)
        }
        // gRPC does not cancel the handler's task when the call ends; it tells this handler.
        try await withRPCCancellationHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await endAtExpiry(subscription, hash) }
                try await attach(subscription, session, hash, from: request.afterEventID, liveOnly: request.liveOnly, events: stream, to: response)
                group.cancelAll()
            }
        } onCancelRPC: {
            events.unsubscribe(id: subscription)
        }
    }

    private func attach(_ subscription: UInt64, _ session: SessionRow, _ hash: [UInt8], from afterEventID: UInt64, liveOnly: Bool,
                        events stream: AsyncThrowingStream<EventHub.Delivery, any Error>, to response: RPCWriter<Chorus_V1_Event>) async throws {
        var attach = Chorus_V1_RequestID()
        attach.clientID = "subscription-\(subscription)"
        attach.sequence = 1
        let attachIndex = try await proposeEntry(attach, .attach(.with { $0.tokenHash = Data(hash); $0.subscriptionID = subscription })).index

        let unread = try state.unreadCount(userID: session.userID)
        try await response.write(.with { $0.id = 0; $0.attached = .with { $0.unreadCount = unread; $0.queuedThrough = attachIndex } })
        // Catch up, a page at a time: every undelivered message after the client's last event
        // (after the attach itself for a live-only stream that has seen none).
        var lastSent = liveOnly && afterEventID == 0 ? attachIndex : afterEventID
        while case let page = try state.undelivered(userID: session.userID, after: lastSent, limit: Validation.maxPageSize), !page.isEmpty {
            for message in page {
                try await response.write(.with { $0.id = message.id; $0.messageReceived = Self.message(message) })
                lastSent = message.id
            }
        }
        do {
            for try await delivery in stream {
                defer { replica.machine.events.written(id: subscription, delivery) }
                guard let event = Self.event(delivery, after: lastSent) else { continue }
                try await response.write(event)
                if case .messageReceived = event.kind { lastSent = max(lastSent, delivery.index) }
            }
        } catch let closure as EventHub.Closure {
            switch closure {
            case .leadershipLost:
                throw RPCError(code: .unavailable, message: "leadership moved; subscribe again to the new leader", metadata: configuration.leaderHint(nil))
            case .shuttingDown:
                throw RPCError(code: .unavailable, message: "node \(configuration.id) is shutting down; subscribe to another node")
            case .sessionEnded:
                throw RPCError(code: .unauthenticated, message: "the session ended (logged out, expired, or its account deleted); log in again")
            case let .overflow(limits):
                var metadata = Metadata()
                metadata.addString("\(lastSent)", forKey: MetadataKeys.resumeAfter)
                throw RPCError(code: .resourceExhausted, message: "this subscription fell more than \(limits.events) events or \(limits.bytes) bytes behind; subscribe again after event \(lastSent)", metadata: metadata)
            }
        }
    }


    static func event(_ delivery: EventHub.Delivery, after lastSent: UInt64) -> Chorus_V1_Event? {
        var event = Chorus_V1_Event()
        event.id = delivery.index
        switch delivery.event {
        case let .messageSent(message):
            guard message.id > lastSent else { return nil }
            event.messageReceived = Self.message(message)
        case let .messagesDeleted(ids, _):
            event.messagesDeleted = .with { $0.ids = ids }
        case let .messageEdited(message), let .groupMessageEdited(message, _):
            event.messageEdited = Self.message(message)
        case let .groupMessageSent(message, _):
            guard message.id > lastSent else { return nil }
            event.messageReceived = Self.message(message)
        case let .groupChanged(message, _):
            event.groupChanged = Self.message(message)
        case let .accountCreated(name):
            event.accountCreated = name
        case let .accountDeleted(name):
            event.accountDeleted = name
        case let .presence(name, online):
            event.presence = .with { $0.name = name; $0.online = online }
        case .sessionsEnded, .clusterVersionRaised:
            return nil
        }
        return event
    }

    /// Ends the stream when its session expires by this node's clock, as a session's end by
    /// a log entry does (`EventHub.endSessions`). The deadline is read again when it comes: a
    /// session used meanwhile lives on.
    func endAtExpiry(_ subscription: UInt64, _ hash: [UInt8]) async {
        while !Task.isCancelled {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            guard let session = try? state.session(tokenHash: hash), !session.hasEnded(at: now) else {
                replica.machine.events.end(id: subscription, .sessionEnded)
                return
            }
            // Checked at least every minute: a deadline far off may move closer (a lifetime).
            let wait = min(session.deadline.map { $0 - now } ?? 60_000, 60_000)
            do { try await Task.sleep(for: .milliseconds(max(1, wait))) } catch { return }
        }
    }

    /// Marks the stream gone, retrying while the leader is busy (`DetachRetry`).
    func detach(_ subscription: UInt64) {
        var command = Command()
        command.version = ChatState.commandVersion
        command.kind = .detach(.with { $0.subscriptionID = subscription })
        guard let bytes = try? command.serializedBytes() as [UInt8] else { return }
        let replica = self.replica
        let metrics = self.metrics
        Task {
            let outcome = await DetachRetry.run(propose: { () async throws(ReplicaError) in _ = try await replica.propose(bytes) },
                                                pause: { try? await Task.sleep(for: $0) })
            if outcome.attempts > 1 { metrics.detachesRetried.increment(by: outcome.attempts - 1) }
            if !outcome.done { metrics.detachesDropped.increment() }
        }
    }
}

/// A detach that is dropped leaves its user online until the next leader change: a detach
/// the leader refuses because it is busy (overloaded) or could not commit in time is proposed
/// again, with growing pauses, up to `attempts` times (about a minute). It is given up when
/// leadership moves or the node stops: a new leader detaches everyone.
enum DetachRetry {
    static let attempts = 32

    static func pause(after attempt: Int) -> Duration {
        .milliseconds(min(2_000, 50 << min(attempt, 6)))
    }

    /// Runs `propose` until it succeeds or fails for good; how many attempts it took, and
    /// whether the detach was made.
    static func run(attempts: Int = attempts, propose: () async throws(ReplicaError) -> Void,
                    pause: (Duration) async -> Void) async -> (attempts: Int, done: Bool) {
        for attempt in 1...attempts {
            do {
                try await propose()
                return (attempt, true)
            } catch {
                switch error {
                case .overloaded, .timedOut:
                    if attempt < attempts { await pause(Self.pause(after: attempt)) }
                default:
                    return (attempt, false)
                }
            }
        }
        return (attempts, false)
    }
}
