import API
import Foundation
import Projections
import SwiftProtobuf

/// Client requests: the first byte picks a `Chat` method, the rest is its request message as
/// it arrives off the wire. The fields go through the same validation and queries the chat
/// service runs, against a state holding a few accounts, sessions and messages. Every outcome
/// must be a value or a `Rejection`; a trap or any other error is a finding.
enum RequestTarget {
    static let fixture = Fixture()

    static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let body = Array(input.dropFirst())
        let state = fixture.state
        do {
            switch selector % 8 {
            case 0:
                let r = try Chorus_V1_CheckUsernameRequest(serializedBytes: body)
                if (try? Validation.accountName(r.name)) != nil { _ = try state.userExists(r.name) }
            case 1:
                let r = try Chorus_V1_LoginRequest(serializedBytes: body)
                try Validation.accountName(r.name)
                _ = try state.checkCredentials(name: r.name, password: String(r.password.prefix(64)))
            case 2:
                let r = try Chorus_V1_ListAccountsRequest(serializedBytes: body)
                _ = try state.accounts(matching: r.pattern.isEmpty ? "*" : r.pattern, pageSize: r.pageSize == 0 ? 50 : Int(r.pageSize),
                                       pageToken: r.pageToken.isEmpty ? nil : r.pageToken)
            case 3:
                let r = try Chorus_V1_HistoryRequest(serializedBytes: body)
                try Validation.accountName(r.otherUser)
                guard let other = try state.user(named: r.otherUser) else { return }
                _ = try state.conversation(between: fixture.alice, and: other.id, limit: r.pageSize == 0 ? 50 : Int(r.pageSize),
                                           pageToken: r.pageToken.isEmpty ? nil : r.pageToken, newestFirst: !r.oldestFirst)
            case 4:
                let r = try Chorus_V1_ReadUndeliveredRequest(serializedBytes: body)
                _ = try state.undelivered(userID: fixture.bob, limit: r.limit == 0 ? 10 : Int(r.limit))
                _ = try state.unreadCount(userID: fixture.bob)
            case 5:
                let r = try Chorus_V1_DeleteMessagesRequest(serializedBytes: body)
                try Validation.messageIDs(r.messageIds)
                for id in r.messageIds.prefix(16) { _ = try state.message(id: id) }
            case 6:
                let r = try Chorus_V1_SendMessageRequest(serializedBytes: body)
                try Validation.accountName(r.recipient)
                try Validation.messageBody(r.body)
                _ = try state.isOnline(r.recipient)
                _ = try state.clientOutcome(clientID: r.requestID.clientID)
            default:
                let r = try Chorus_V1_LogoutRequest(serializedBytes: body)
                _ = try state.session(tokenHash: Credentials.tokenHash(Array(r.token.utf8)))
            }
        } catch is Rejection {
        } catch is SwiftProtobuf.BinaryDecodingError {
        } catch {
            fatalError("request \(selector % 8) failed with \(error), not a rejection")
        }
    }
}

/// A state with alice, bob and carol, sessions, and messages between them, in a temporary
/// directory that lives as long as the process.
final class Fixture: Sendable {
    let state: ChatState
    let alice: UInt64
    let bob: UInt64

    init() {
        let directory = NSTemporaryDirectory() + "chorus-fuzz-" + UUID().uuidString
        let state = try! ChatState(directory: directory)
        self.state = state
        var index: UInt64 = 0
        func apply(_ kind: Command.OneOf_Kind) -> UInt64 {
            index += 1
            var command = Command()
            command.version = ChatState.commandVersion
            command.sequence = index
            command.timestampMs = 1_700_000_000_000
            command.kind = kind
            return (try? state.apply(command, at: index)?.outcome.get()) ?? 0
        }
        var ids: [String: UInt64] = [:]
        for name in ["alice", "bob", "carol"] {
            ids[name] = apply(.createAccount(.with {
                $0.name = name
                $0.salt = Data("salt".utf8)
                $0.iterations = 1
                $0.passwordHash = Data(Credentials.hashPassword("pw", salt: Array("salt".utf8), iterations: 1)!)
            }))
            _ = apply(.openSession(.with { $0.name = name; $0.tokenHash = Data(Credentials.tokenHash(Array("token-\(name)".utf8))) }))
        }
        for n in 0..<20 {
            _ = apply(.sendMessage(.with {
                $0.tokenHash = Data(Credentials.tokenHash(Array("token-\(n % 2 == 0 ? "alice" : "carol")".utf8)))
                $0.recipient = "bob"
                $0.body = "message \(n)"
            }))
        }
        self.alice = ids["alice"] ?? 0
        bob = ids["bob"] ?? 0
    }
}
