import Foundation

/// Checks a recorded history against the final state. Every violation carries the smallest
/// slice of history that shows it.
struct Checker {
    struct Violation: CustomStringConvertible {
        var rule: String
        var detail: String
        var slice: [HistoryOperation]

        var description: String {
            ([" ✗ \(rule): \(detail)"] + slice.sorted { $0.invoke < $1.invoke }.map { "     \($0.summary)" }).joined(separator: "\n")
        }
    }

    let operations: [HistoryOperation]
    let final: FinalState
    private(set) var violations: [Violation] = []

    init(operations: [HistoryOperation], final: FinalState) {
        self.operations = operations
        self.final = final
    }

    /// Messages per conversation read (the newest): the checks know a read shows only those.
    static let pageSize = 100
    /// Messages per read of undelivered ones (the oldest first). Reads must take more than
    /// arrives, or every inbox fills and a stale read hides behind a full page of old messages:
    /// in 100 of a worker's operations about 100 deliveries arrive (40 direct sends, 15 group
    /// sends to four members each), and 12 reads take up to this many each.
    static let undeliveredLimit = 10
    /// The write that shows the healed cluster accepts writes again.
    static let probeBody = "final-probe"

    mutating func check() -> [Violation] {
        violations = []
        // Direct and group sends alike, for what the final state must hold.
        let sends = operations.filter { $0.kind == .send || $0.kind == .groupSend }
        let sendByBody = Dictionary(sends.compactMap { op in op.body.map { ($0, op) } }, uniquingKeysWith: { a, _ in a })
        var deletes: [UInt64: [HistoryOperation]] = [:]
        for op in operations where op.kind == .delete && op.outcome != .fail {
            for id in op.ids ?? [] { deletes[id, default: []].append(op) }
        }
        /// Whether a delete of `id` may have happened before `time`.
        func mayBeDeleted(_ id: UInt64, before time: Int64) -> Bool {
            deletes[id]?.contains { $0.invoke < time } ?? false
        }

        // 1. Sends against the final state: each acknowledged one present once (unless
        // deleted), none twice, none that was never sent, none that definitely failed.
        let finalByBody = Dictionary(grouping: final.messages, by: \.body)
        for (body, stored) in finalByBody where body != Self.probeBody {
            guard let send = sendByBody[body] else {
                add("phantom message", "message \(stored[0].id) \"\(body)\" was never sent", [])
                continue
            }
            if stored.count > 1 {
                add("stored twice", "\"\(body)\" is stored as messages \(stored.map(\.id))", [send])
            }
            if send.outcome == .fail {
                add("failed send took effect", "\"\(body)\" was refused but is stored as message \(stored[0].id)", [send])
            }
            if send.outcome == .ok, let id = send.id, !stored.contains(where: { $0.id == id }) {
                add("acknowledged under another id", "\"\(body)\" was acknowledged as \(id) but is stored as \(stored.map(\.id))", [send])
            }
        }
        for send in sends where send.outcome == .ok {
            guard let id = send.id, let body = send.body else { continue }
            if finalByBody[body] == nil && deletes[id] == nil {
                add("acknowledged send lost", "message \(id) \"\(body)\" was acknowledged and never deleted, but is not stored", [send])
            }
        }

        // 2. Conversation reads: each consistent with one order of sends that respects real
        // time.
        // A group's conversation is one, whoever reads it.
        let reads = operations.filter { ($0.kind == .history || $0.kind == .groupHistory) && $0.outcome == .ok }
        var byConversation: [String: [HistoryOperation]] = [:]
        for read in reads { byConversation[Self.conversation(of: read), default: []].append(read) }
        var sendsByConversation: [String: [HistoryOperation]] = [:]
        for send in sends where send.outcome == .ok { sendsByConversation[Self.conversation(of: send), default: []].append(send) }

        for (conversation, reads) in byConversation {
            // Newest first: a read's page reaches down to its lowest id, so only the sends
            // above that are examined.
            let acknowledged = (sendsByConversation[conversation] ?? []).sorted { ($0.id ?? 0) > ($1.id ?? 0) }
            let ordered = reads.sorted { $0.complete < $1.complete }
            for (position, read) in ordered.enumerated() {
                let messages = read.page ?? []
                let ids = messages.map(\.i)
                let held = Set(ids)
                if held.count != ids.count {
                    add("duplicate in a read", "a read of \(conversation) returned a message twice", [read])
                }
                if ids != ids.sorted(by: >) && ids != ids.sorted() {
                    add("read out of order", "a read of \(conversation) is not in log order", [read])
                }
                let complete = read.more.map { !$0 } ?? (messages.count < Self.pageSize)
                let lowest = ids.min() ?? 0
                for message in messages where message.b != Self.probeBody {
                    guard let send = sendByBody[message.b] else {
                        add("phantom in a read", "message \(message.i) \"\(message.b)\" was never sent", [read])
                        continue
                    }
                    if send.invoke > read.complete {
                        add("read from the future", "the read returned \"\(message.b)\", sent only after it completed", [read, send])
                    }
                }
                // A send acknowledged before the read began is in it (within its page).
                for send in acknowledged {
                    guard let id = send.id else { continue }
                    if !complete && id < lowest { break }
                    guard send.complete < read.invoke, !held.contains(id), !mayBeDeleted(id, before: read.complete) else { continue }
                    add("stale read", "message \(id) was acknowledged before the read of \(conversation) began, and the read lacks it", [send, read])
                }
                // Reads extend the reads that completed before they began.
                if let previous = ordered[..<position].last(where: { $0.complete < read.invoke }) {
                    let before = (previous.page ?? []).map(\.i)
                    let beforeIDs = Set(before)
                    for id in before where (complete || id >= lowest) && !held.contains(id) && !mayBeDeleted(id, before: read.complete) {
                        add("read went back in time", "message \(id) was in an earlier read of \(conversation) and is missing from a later one", [previous, read])
                        break
                    }
                    if let low = before.min(), let high = before.max() {
                        for id in ids where id >= low && id <= high && !beforeIDs.contains(id) && (before.count < Self.pageSize || id >= low) {
                            add("read filled a gap", "message \(id) lies inside an earlier read of \(conversation) that lacked it", [previous, read])
                            break
                        }
                    }
                }
            }
        }

        // 3. Undelivered reads and delivered flags.
        let undelivered = operations.filter { $0.kind == .undelivered && $0.messages != nil }
        var seenBy: [String: [HistoryOperation]] = [:]
        for op in undelivered { seenBy[op.user, default: []].append(op) }
        for (user, ops) in seenBy {
            let ordered = ops.sorted { $0.invoke < $1.invoke }
            for op in ordered {
                let ids = (op.messages ?? []).map(\.id)
                if ids != ids.sorted() {
                    add("undelivered out of order", "\(user) was handed \(ids) out of log order", [op])
                }
                for message in op.messages ?? [] where message.recipient != user && message.group == nil {
                    add("someone else's message", "\(user) was handed message \(message.id) for \(message.recipient)", [op])
                }
            }
            // Each message's hand-outs: none may begin after an acknowledged one completed.
            var handedOut: [UInt64: [HistoryOperation]] = [:]
            for op in ordered {
                for message in op.messages ?? [] { handedOut[message.id, default: []].append(op) }
            }
            for (id, ops) in handedOut {
                guard let acknowledged = ops.filter({ $0.acknowledged == .ok }).min(by: { $0.complete < $1.complete }),
                      let again = ops.first(where: { $0.invoke > acknowledged.complete })
                else { continue }
                add("delivered twice", "message \(id) was acknowledged by \(user) and handed out again", [acknowledged, again])
            }
        }
        // Handed out to be acknowledged (a pinned reader's reads acknowledge nothing).
        let everHandedOut = Set(undelivered.filter { $0.acknowledged != nil }.flatMap { ($0.messages ?? []).map(\.id) })
        let acknowledgedIDs = Set(undelivered.filter { $0.acknowledged == .ok }.flatMap { ($0.messages ?? []).map(\.id) })
        for message in final.messages where message.group == nil {
            if acknowledgedIDs.contains(message.id) && !message.delivered {
                let ops = undelivered.filter { ($0.messages ?? []).contains { $0.id == message.id } }
                add("acknowledged but undelivered", "message \(message.id) was acknowledged by \(message.recipient) but is not marked delivered", ops)
            }
            if message.delivered && !everHandedOut.contains(message.id) && message.body != Self.probeBody {
                add("delivered unseen", "message \(message.id) is marked delivered but no read handed it to \(message.recipient)", [])
            }
        }
        // The count says what waited, as the last reads took it; the direct ones among those
        // are the stored undelivered ones.
        let groupIDs = Set(final.messages.filter { $0.group != nil }.map(\.id))
        for (user, count) in final.unread {
            let waiting = final.waiting[user] ?? []
            let direct = Set(final.messages.filter { $0.recipient == user && !$0.delivered }.map(\.id))
            if count != UInt64(waiting.count) || Set(waiting.filter { !groupIDs.contains($0) }) != direct {
                add("unread count", "\(user)'s unread count is \(count); \(waiting.count) messages waited for them at the end, and \(direct.count) of their stored direct messages are undelivered", [])
            }
        }

        // 4. Deletes stick: a message whose delete was acknowledged is in no read that began
        // after it, nor in the final state.
        let finalIDs = Set(final.messages.map(\.id))
        let allReads = operations.filter { ($0.kind == .history || $0.kind == .groupHistory || $0.kind == .undelivered) && $0.outcome == .ok }
        // The reads that returned each message, in the history's order: looked up per deleted
        // message (searching every read for each one took seconds on a long run).
        var readsShowing: [UInt64: [HistoryOperation]] = [:]
        for read in allReads {
            for id in Set(Self.shownIDs(read)) { readsShowing[id, default: []].append(read) }
        }
        for delete in operations where delete.kind == .delete && delete.outcome == .ok {
            for id in delete.ids ?? [] {
                if finalIDs.contains(id) {
                    add("delete did not stick", "message \(id) was deleted (acknowledged) but is still stored", [delete])
                    continue
                }
                if let read = readsShowing[id]?.first(where: { $0.invoke > delete.complete }) {
                    add("delete did not stick", "message \(id) was deleted (acknowledged) and a later read returned it", [delete, read])
                }
            }
        }

        // 5. What a read showed survives: a message any read returned is in the final state
        // unless a delete of it may have happened (whatever its send's outcome was).
        var shownBy: [UInt64: HistoryOperation] = [:]
        for read in allReads {
            for id in Self.shownIDs(read) where shownBy[id] == nil { shownBy[id] = read }
        }
        for (id, read) in shownBy.sorted(by: { $0.key < $1.key }) where !finalIDs.contains(id) && deletes[id] == nil {
            add("shown message lost", "message \(id) was returned by a read but is not stored at the end, and nobody deleted it", [read])
        }

        // 6. Undelivered reads are not stale: a message acknowledged as sent to the reader
        // before the read began is in it, unless the page was full of older ones, or it may
        // already have been acknowledged (delivered) or deleted by then.
        var sentTo: [String: [HistoryOperation]] = [:]
        for send in sends where send.kind == .send && send.outcome == .ok && send.id != nil { sentTo[send.other ?? "", default: []].append(send) }
        // A group message waits for every member but its sender: those that never left are
        // read against it as its recipients (one that left and came back may have missed it).
        let churners = Set(operations.filter { $0.kind == .groupLeave }.map(\.user))
        for send in sends where send.kind == .groupSend && send.outcome == .ok && send.id != nil {
            for member in final.unread.keys where member != send.user && !churners.contains(member) { sentTo[member, default: []].append(send) }
        }
        let undeliveredBy = Dictionary(grouping: undelivered, by: \.user)
        for read in undelivered where read.outcome == .ok {
            let returned = (read.messages ?? []).map(\.id)
            let full = returned.count >= Self.undeliveredLimit
            let highest = returned.max() ?? 0
            let acknowledgedBefore = Set((undeliveredBy[read.user] ?? []).filter { $0.acknowledged != .fail && $0.acknowledged != nil && $0.invoke < read.complete }
                .flatMap { ($0.messages ?? []).map(\.id) })
            for send in sentTo[read.user] ?? [] where send.complete < read.invoke {
                let id = send.id!
                guard !returned.contains(id), !(full && id > highest), !acknowledgedBefore.contains(id), !mayBeDeleted(id, before: read.complete) else { continue }
                add("stale undelivered read", "message \(id) to \(read.user) was acknowledged as sent before the read began, and the read lacks it", [send, read])
                break
            }
        }

        // 8. Groups: every member sees every acknowledged group message exactly once (handed
        // out and acknowledged, or waiting at the end), and nothing sent after it left.
        checkGroups(sends: sends, undelivered: undelivered, deletes: deletes)

        // 7. After healing, writes succeed again promptly.
        if final.firstWriteAfterHealMs > 10_000 {
            add("slow recovery", String(format: "the first write after healing took %.0f ms", final.firstWriteAfterHealMs), [])
        }
        return violations
    }

    /// The message ids a read returned.
    static func shownIDs(_ read: HistoryOperation) -> [UInt64] {
        (read.page ?? []).map(\.i) + (read.messages ?? []).map(\.id)
    }

    /// Group messages against membership. A member that never left must get each one sent
    /// by another; a member that left must not get those sent after it left (and before it
    /// may have been added back).
    private mutating func checkGroups(sends: [HistoryOperation], undelivered: [HistoryOperation], deletes: [UInt64: [HistoryOperation]]) {
        let groupSends = sends.filter { $0.kind == .groupSend && $0.outcome == .ok && $0.id != nil }
        guard !groupSends.isEmpty else { return }
        let leaves = operations.filter { $0.kind == .groupLeave && $0.outcome == .ok }
        let adds = operations.filter { $0.kind == .groupAdd && $0.outcome != .fail }
        let churners = Set(operations.filter { $0.kind == .groupLeave }.map(\.user))
        let sendByID = Dictionary(groupSends.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        var reads: [String: [HistoryOperation]] = [:]
        for read in undelivered where read.acknowledged != nil { reads[read.user, default: []].append(read) }

        for user in final.unread.keys.sorted() {
            let waiting = Set(final.waiting[user] ?? [])
            let acknowledged = (reads[user] ?? []).filter { $0.acknowledged == .ok }
            let taken = Set(acknowledged.flatMap { ($0.messages ?? []).map(\.id) })
            let perhaps = Set((reads[user] ?? []).filter { $0.acknowledged == .unknown }.flatMap { ($0.messages ?? []).map(\.id) })
            for id in taken.intersection(waiting) where sendByID[id] != nil {
                let read = acknowledged.first { ($0.messages ?? []).contains { $0.id == id } }
                add("group message delivered twice", "\(user) acknowledged group message \(id), and it waited for them again at the end", read.map { [$0] } ?? [])
            }
            if !churners.contains(user) {
                for send in groupSends where send.user != user {
                    let id = send.id!
                    guard !taken.contains(id), !perhaps.contains(id), !waiting.contains(id), deletes[id] == nil else { continue }
                    add("group message lost for a member", "group message \(id) never reached \(user), a member throughout", [send])
                }
            }
            // What it was handed, or found waiting, after it left.
            for leave in leaves where leave.user == user {
                let handed = (reads[user] ?? []).flatMap { read in (read.messages ?? []).map { ($0.id, Optional(read)) } } + waiting.map { ($0, nil) }
                for (id, read) in handed {
                    // An add may have put it back: one that began before the send ended and did
                    // not end before the leave began (a retried or unknown add may commit after
                    // the leave, whenever it began).
                    guard let send = sendByID[id], send.invoke > leave.complete,
                          !adds.contains(where: { $0.user == user && $0.invoke < send.complete && ($0.outcome == .unknown || $0.complete > leave.invoke) })
                    else { continue }
                    add("group message after leaving", "\(user) left #\(send.group ?? "?") and was then handed group message \(id)", [leave, send] + (read.map { [$0] } ?? []))
                }
            }
        }
    }

    /// The conversation an operation is about: a group's, or the two users'.
    static func conversation(of op: HistoryOperation) -> String {
        if let group = op.group { return "#\(group)" }
        return conversation(op.user, op.other ?? "")
    }

    static func conversation(_ a: String, _ b: String) -> String {
        a < b ? "\(a)↔\(b)" : "\(b)↔\(a)"
    }

    private mutating func add(_ rule: String, _ detail: String, _ slice: [HistoryOperation]) {
        violations.append(Violation(rule: rule, detail: detail, slice: slice))
    }
}
