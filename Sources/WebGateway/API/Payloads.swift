import Client
import Crypto
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
    /// The page's id for this message, kept until it learns the outcome (nil from a caller
    /// that does not retry).
    var key: SendKey?
}

/// A message's id as the page keeps it: its own client id (one per page load), the
/// message's sequence, and the lowest sequence it still awaits an answer for.
struct SendKey: Decodable {
    var client: String
    var sequence: UInt64
    var waitingFrom: UInt64

    /// The cluster's request id for it, under a digest of the session's token (never the
    /// token: request ids are in the log), so that no page can reach another session's
    /// requests; or 400.
    func requestID(token: String) throws -> ChorusRequestID {
        guard (8...40).contains(client.utf8.count), client.utf8.allSatisfy({ $0 == 45 || $0 == 95 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }) else {
            throw HTTPError(.badRequest, message: "The message key's client must be 8 to 40 letters, digits, '-' or '_'.")
        }
        guard sequence >= 1, sequence < 1 << 53, waitingFrom >= 1, waitingFrom <= sequence else {
            throw HTTPError(.badRequest, message: "The message key's sequence must be at least 1, and what it waits from no later than it.")
        }
        let session = SHA256.hash(data: Array(token.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
        return ChorusRequestID(clientID: "web/\(session)/\(client)", sequence: sequence, firstOutstanding: waitingFrom)
    }
}

struct ReadForm: Decodable {
    var limit: Int
}

/// Messages to delete, or to acknowledge as shown.
struct DeleteForm: Decodable {
    var ids: [String]

    /// The ids as numbers, or 400 when one is not.
    func messageIDs() throws -> [UInt64] {
        guard ids.count <= 1_000 else { throw HTTPError(.badRequest, message: "Name at most 1000 messages at a time.") }
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
    /// Whether its recipient has been shown it (the page acknowledges what it shows).
    var delivered: Bool
    /// When its body was last edited; absent if never.
    var editedUnixMs: Int64?
    /// In a group's conversation: the group's name (`to` is empty).
    var group: String?
    /// A change to the group (`body` is empty): its kind, whom it concerns, the name before
    /// a rename, and who became admin.
    var change: ChangeJSON?

    struct ChangeJSON: Encodable, Equatable {
        var kind: String
        var members: [String]
        var previousName: String?
        var accountDeleted: Bool
        var newAdmins: [String]
    }

    init(_ m: ChatMessage) {
        id = String(m.id)
        from = m.sender
        to = m.recipient
        body = m.body
        sentUnixMs = m.sentUnixMs
        delivered = m.delivered
        editedUnixMs = m.editedUnixMs
        group = m.group
        change = m.change.map { ChangeJSON(kind: $0.kind.rawValue, members: $0.members, previousName: $0.previousName, accountDeleted: $0.accountDeleted, newAdmins: $0.newAdmins) }
    }

    init(id: UInt64, from: String, to: String, body: String, sentUnixMs: Int64, delivered: Bool = false) {
        self.id = String(id)
        self.from = from
        self.to = to
        self.body = body
        self.sentUnixMs = sentUnixMs
        self.delivered = delivered
    }
}

struct MessagesPage: ResponseEncodable {
    var messages: [MessageJSON]
    var next: String?
    /// The other side deleted its account (absent otherwise).
    var deletedAccount: Bool?
}

struct InboxRead: ResponseEncodable {
    var messages: [MessageJSON]
    /// Still waiting after these.
    var unread: UInt64
}

struct Deleted: ResponseEncodable {
    var deleted: UInt64
}

/// `POST /api/messages/edit`: a message of the caller's and its new body.
struct EditForm: Decodable {
    var id: String
    var body: String

    func messageID() throws -> UInt64 {
        guard let id = UInt64(id), id > 0 else { throw HTTPError(.badRequest, message: "'\(id.prefix(40))' is not a message id.") }
        return id
    }
}

struct Edited: ResponseEncodable {
    var editedUnixMs: Int64
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
