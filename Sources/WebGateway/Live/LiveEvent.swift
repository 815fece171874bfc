import Client
import Foundation

/// One frame of the live channel, as JSON text: `{"type": "...", ...}`.
struct LiveEvent: Encodable, Equatable {
    var type: String
    var message: MessageJSON?
    var ids: [String]?
    var name: String?
    var online: Bool?
    var unread: UInt64?
    var reason: String?

    init(type: String) {
        self.type = type
    }

    init(_ event: ChatEvent) {
        switch event {
        case let .attached(unread):
            self.init(type: "attached")
            self.unread = unread
        case let .message(message):
            self.init(type: "message")
            self.message = MessageJSON(message)
        case let .messagesDeleted(ids):
            self.init(type: "deleted")
            self.ids = ids.map(String.init)
        case let .messageEdited(message):
            self.init(type: "edited")
            self.message = MessageJSON(message)
        case let .groupChanged(message):
            self.init(type: "groupChanged")
            self.message = MessageJSON(message)
        case let .accountCreated(name):
            self.init(type: "account")
            self.name = name
            self.online = false
        case let .accountDeleted(name):
            self.init(type: "accountDeleted")
            self.name = name
        case let .presence(name, online):
            self.init(type: "presence")
            self.name = name
            self.online = online
        case let .reconnecting(reason):
            self.init(type: "reconnecting")
            self.reason = reason
        }
    }

    /// The session is over: the page goes back to the login screen.
    static func ended(_ reason: String) -> LiveEvent {
        var event = LiveEvent(type: "ended")
        event.reason = reason
        return event
    }

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? #"{"type":"error"}"#
    }
}
