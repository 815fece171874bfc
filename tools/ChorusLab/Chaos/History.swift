import Foundation
import ToolSupport

/// One operation of a fault-injection run, as the workload saw it: when it was invoked and
/// completed (nanoseconds on one monotonic clock) and how it ended. `unknown`: the client
/// gave up without an answer, so a write may or may not have taken effect.
struct HistoryOperation: Codable, Sendable {
    enum Kind: String, Codable, Sendable {
        case send, history, undelivered, delete
        /// In the run's one group: a send, a read of its conversation, its churning member
        /// leaving, and that member added back by the group's admin.
        case groupSend, groupHistory, groupLeave, groupAdd
    }
    enum Outcome: String, Codable, Sendable { case ok, fail, unknown }

    var worker: Int
    var kind: Kind
    var user: String
    var other: String?
    /// The group of a group operation.
    var group: String?
    var body: String?
    var invoke: Int64
    var complete: Int64
    var outcome: Outcome
    /// A send's message id; a delete's ids.
    var id: UInt64?
    var ids: [UInt64]?
    /// What an undelivered read returned (also when its acknowledgement failed).
    var messages: [Message]?
    /// What a conversation read returned, newest first: ids and bodies only, since long runs
    /// record hundreds of thousands of them.
    var page: [Seen]?
    /// For a group's conversation read: whether its page was cut (more came after it). Its
    /// changes (joins, leaves) are left out of `page`, so a page that holds fewer messages than
    /// asked for may still be cut.
    var more: Bool?
    /// For an undelivered read: whether its acknowledgement is known to have happened.
    var acknowledged: Outcome?
    var error: String?
    /// The node a pinned reader asked (reads served by whichever node it is, followers too).
    var node: String?

    struct Seen: Codable, Sendable, Hashable {
        var i: UInt64
        var b: String
    }

    struct Message: Codable, Sendable, Hashable {
        var id: UInt64
        var sender: String
        var recipient: String
        var body: String
        var delivered: Bool
        /// A group message's group (its recipient is empty).
        var group: String?
    }

    var summary: String {
        var text = "[w\(worker) \(String(format: "%.3f", Double(invoke) / 1e9))–\(String(format: "%.3f", Double(complete) / 1e9)) s] \(kind.rawValue) \(user)"
        if let other { text += "→\(other)" }
        if let group { text += "→#\(group)" }
        if let body { text += " \"\(body)\"" }
        text += " \(outcome.rawValue)"
        if let id { text += " id \(id)" }
        if let ids { text += " ids \(ids)" }
        if let messages { text += " returned \(messages.count): \(messages.prefix(8).map { "\($0.id)" }.joined(separator: ","))\(messages.count > 8 ? ",…" : "")" }
        if let page { text += " returned \(page.count): \(page.prefix(8).map { "\($0.i)" }.joined(separator: ","))\(page.count > 8 ? ",…" : "")" }
        if let acknowledged { text += " ack \(acknowledged.rawValue)" }
        if let node { text += " at \(node)" }
        if let error { text += " (\(error))" }
        return text
    }
}

/// The state after the faults healed, read with nothing else running.
struct FinalState: Codable, Sendable {
    /// Every message still stored, by conversation.
    var messages: [HistoryOperation.Message]
    /// Each user's unread count as the server reports it.
    var unread: [String: UInt64]
    /// What waited for each user at the end, read (and acknowledged) after everything else:
    /// direct and group messages, oldest first.
    var waiting: [String: [UInt64]] = [:]
    /// From healing to the first acknowledged write.
    var firstWriteAfterHealMs: Double
}

enum HistoryFile {
    static func append(_ operation: HistoryOperation, to handle: FileHandle) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(operation) {
            handle.write(data + Data("\n".utf8))
        }
    }

    /// Reads the history a line at a time (a long run's file is large).
    static func read(_ path: String) throws -> [HistoryOperation] {
        guard let file = fopen(path, "r") else { throw ToolError("cannot read \(path)") }
        defer { fclose(file) }
        let decoder = JSONDecoder()
        var operations: [HistoryOperation] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.count > 1 else { continue }
            operations.append(try decoder.decode(HistoryOperation.self, from: Data(text.utf8)))
        }
        return operations
    }
}
