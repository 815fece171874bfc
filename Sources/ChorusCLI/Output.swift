import Client
import Foundation

/// Human or JSON output, and what each failure means for the exit code.
struct Output: Sendable {
    var json: Bool

    /// Prints `human` for people or `object` as one JSON line for scripts.
    func emit(_ human: @autoclosure () -> String, _ object: @autoclosure () -> Any) {
        if json {
            let data = (try? JSONSerialization.data(withJSONObject: object(), options: [.sortedKeys])) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(human())
        }
    }

    func fail(_ error: ChorusError) {
        fail(message: error.description, code: Self.code(for: error), hint: Self.hint(for: error))
    }

    func fail(message: String, code: String, hint: String? = nil) {
        if json {
            var object: [String: Any] = ["error": code, "message": message]
            if let hint { object["hint"] = hint }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            FileHandle.standardError.write(data + Data("\n".utf8))
        } else {
            var text = "error: \(message)\n"
            if let hint { text += "hint: \(hint)\n" }
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    /// 2 invalid input, 3 not found, 4 already exists, 5 wrong credentials or no session,
    /// 6 not allowed, 7 cluster unavailable (nothing was done), 8 busy (nothing was done),
    /// 9 outcome unknown (it may have been done), 1 anything else.
    static func exitCode(for error: ChorusError) -> Int32 {
        switch error {
        case .invalidInput: 2
        case .notFound: 3
        case .alreadyExists: 4
        case .wrongCredentials: 5
        case .notAuthorized: 6
        case .clusterUnavailable: 7
        case .busy: 8
        case .outcomeUnknown: 9
        case .failedPrecondition, .other: 1
        }
    }

    static func code(for error: ChorusError) -> String {
        switch error {
        case .invalidInput: "invalid_input"
        case .notFound: "not_found"
        case .alreadyExists: "already_exists"
        case .wrongCredentials: "wrong_credentials"
        case .notAuthorized: "not_authorized"
        case .clusterUnavailable: "unavailable"
        case .busy: "busy"
        case .outcomeUnknown: "outcome_unknown"
        case .failedPrecondition: "failed_precondition"
        case .other: "error"
        }
    }

    static func hint(for error: ChorusError) -> String? {
        switch error {
        case .wrongCredentials: "run `chorus login NAME` (or `chorus register NAME`) first"
        case .clusterUnavailable: "is the cluster running? start one with scripts/cluster.sh, or pass --endpoints"
        case .outcomeUnknown: "it may have been done: look (e.g. `chorus history NAME`) before you do it again"
        default: nil
        }
    }

    static func describe(_ message: ChatMessage) -> [String: Any] {
        var object: [String: Any] = ["id": message.id, "from": message.sender, "to": message.recipient, "body": message.body,
                                     "sent_unix_ms": message.sentUnixMs, "delivered": message.delivered, "edited_unix_ms": message.editedUnixMs ?? 0]
        if let group = message.group { object["group"] = group }
        if let change = message.change {
            object["change"] = ["kind": change.kind.rawValue, "members": change.members, "previous_name": change.previousName ?? NSNull(),
                                "account_deleted": change.accountDeleted, "new_admins": change.newAdmins] as [String: Any]
        }
        return object
    }

    static func line(_ message: ChatMessage) -> String {
        let date = Date(timeIntervalSince1970: Double(message.sentUnixMs) / 1000)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        let stamp = "#\(message.id) [\(formatter.string(from: date))]"
        if let group = message.group, let change = message.change {
            return "\(stamp) #\(group): \(sentence(change, by: message.sender))"
        }
        let edited = message.editedUnixMs.map { " (edited \(formatter.string(from: Date(timeIntervalSince1970: Double($0) / 1000))))" } ?? ""
        let to = message.group.map { "#\($0)" } ?? message.recipient
        return "\(stamp) \(message.sender) → \(to): \(message.body)\(edited)"
    }

    /// A change to a group as a sentence: "alice added bob, carol".
    static func sentence(_ change: GroupChange, by actor: String) -> String {
        let names = change.members.joined(separator: ", ")
        var text = switch change.kind {
        case .created: change.members.isEmpty ? "\(actor) created the group" : "\(actor) created the group with \(names)"
        case .added: "\(actor) added \(names)"
        case .removed: "\(actor) removed \(names)"
        case .left: change.accountDeleted ? "\(actor) left (account deleted)" : "\(actor) left"
        case .renamed: "\(actor) renamed the group from \(change.previousName ?? "?")"
        case .madeAdmin: "\(actor) made \(names) an admin"
        case .noLongerAdmin: "\(actor) made \(names) no longer an admin"
        case .unknown: "\(actor) changed the group"
        }
        if !change.newAdmins.isEmpty { text += "; \(change.newAdmins.joined(separator: ", ")) became admin" }
        return text
    }
}
