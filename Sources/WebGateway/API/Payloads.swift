import Client
import Foundation
import Hummingbird

// The JSON the page sends and receives. Message ids travel as strings: JavaScript numbers
// lose precision above 2^53.

struct Credentials: Decodable {
    var name: String
    var password: String
}

struct PasswordForm: Decodable {
    var password: String
}

struct SendForm: Decodable {
    var body: String
}

struct ReadForm: Decodable {
    var limit: Int
}

struct DeleteForm: Decodable {
    var ids: [String]

    /// The ids as numbers, or 400 when one is not.
    func messageIDs() throws -> [UInt64] {
        guard ids.count <= 1_000 else { throw HTTPError(.badRequest, message: "Delete at most 1000 messages at a time.") }
        return try ids.map { text in
            guard let id = UInt64(text), id > 0 else { throw HTTPError(.badRequest, message: "'\(text.prefix(40))' is not a message id.") }
            return id
        }
    }
}

struct SessionInfo: ResponseEncodable {
    var name: String
    /// Messages waiting (undelivered) when the session started.
    var unread: UInt64?
}

struct NameCheck: ResponseEncodable {
    var available: Bool
    var reason: String?
}

struct AccountJSON: ResponseEncodable {
    var name: String
    var online: Bool
}

struct AccountsPage: ResponseEncodable {
    var accounts: [AccountJSON]
    var next: String?
}

struct MessageJSON: ResponseEncodable, Equatable {
    var id: String
    var from: String
    var to: String
    var body: String
    var sentUnixMs: Int64

    init(_ m: ChatMessage) {
        id = String(m.id)
        from = m.sender
        to = m.recipient
        body = m.body
        sentUnixMs = m.sentUnixMs
    }

    init(id: UInt64, from: String, to: String, body: String, sentUnixMs: Int64) {
        self.id = String(id)
        self.from = from
        self.to = to
        self.body = body
        self.sentUnixMs = sentUnixMs
    }
}

struct MessagesPage: ResponseEncodable {
    var messages: [MessageJSON]
    var next: String?
}

struct InboxRead: ResponseEncodable {
    var messages: [MessageJSON]
    /// Still waiting after these.
    var unread: UInt64
}

struct Deleted: ResponseEncodable {
    var deleted: UInt64
}

struct ClusterJSON: ResponseEncodable {
    struct Node: Codable {
        var endpoint: String
        var reachable: Bool
        var id: UInt64?
        var role: String?
        var term: UInt64?
        var commitIndex: UInt64?
    }

    var nodes: [Node]
    /// The endpoint of the node most of them name as leader.
    var leader: String?
}
