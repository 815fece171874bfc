import API
import Foundation
import GRPCCore
import Projections

extension ChatService {
    /// Attaches a live stream for the caller on the leader. Order: register for events, mark
    /// the user online (a log entry), send what is undelivered since the client's last event,
    /// then stream. Ends with UNAVAILABLE when leadership moves, so the client re-attaches.
    func subscribe(request: Chorus_V1_SubscribeRequest, response: RPCWriter<Chorus_V1_Event>, context: ServerContext) async throws {
        let session = try await authenticate(request.token)
        let hash = try tokenHash(request.token)
        let subscription = UInt64.random(in: 1...UInt64.max)
        let stream = replica.events.subscribe(id: subscription, userID: session.userID, name: session.name)
        defer {
            replica.events.unsubscribe(id: subscription)
            detach(subscription)
        }
        var attach = Chorus_V1_RequestID()
        attach.clientID = "subscription-\(subscription)"
        attach.sequence = 1
        _ = try await propose(attach, .attach(.with { $0.tokenHash = Data(hash); $0.subscriptionID = subscription }))

        let unread = try state.unreadCount(userID: session.userID)
        try await response.write(.with { $0.id = 0; $0.attached = .with { $0.unreadCount = unread } })
        // Catch up: undelivered messages after the last event the client saw.
        var lastSent = request.afterEventID
        var backlog = try state.undelivered(userID: session.userID, limit: Validation.maxPageSize)
        while let last = backlog.last {
            for message in backlog where message.id > lastSent {
                try await response.write(.with { $0.id = message.id; $0.messageReceived = Self.message(message) })
                lastSent = message.id
            }
            guard backlog.count == Validation.maxPageSize else { break }
            backlog = try state.undelivered(userID: session.userID, limit: Validation.maxPageSize).filter { $0.id > last.id }
        }
        do {
            for try await delivery in stream {
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
        case let .accountCreated(name):
            event.accountCreated = name
        case let .accountDeleted(name):
            event.accountDeleted = name
        }
        return event
    }

    /// Marks the stream gone; best effort (a new leader detaches everyone anyway).
    func detach(_ subscription: UInt64) {
        var command = Command()
        command.version = ChatState.commandVersion
        command.kind = .detach(.with { $0.subscriptionID = subscription })
        guard let bytes = try? command.serializedBytes() as [UInt8] else { return }
        let replica = self.replica
        Task { _ = try? await replica.propose(bytes) }
    }
}
