import Testing
@testable import ChorusLab

/// The fault-injection checker, rule by rule: for each rule a history with exactly the fault
/// that rule is for (a bug planted in the history itself), which must make that rule fire and
/// no rule it is not about; and a clean history that makes none fire. The real-process runs
/// (`ChaosTests`) show the rules firing on bugs planted in real nodes.
@Suite struct ChaosCheckerTests {
    typealias Op = HistoryOperation
    typealias Stored = HistoryOperation.Message

    static func send(_ id: UInt64, _ body: String, _ from: String = "u0", to: String = "u1", at span: ClosedRange<Int64>, _ outcome: Op.Outcome = .ok) -> Op {
        Op(worker: 0, kind: .send, user: from, other: to, body: body, invoke: span.lowerBound, complete: span.upperBound, outcome: outcome, id: outcome == .ok ? id : nil)
    }

    static func history(_ user: String = "u1", with other: String = "u0", at span: ClosedRange<Int64>, _ page: [(UInt64, String)]) -> Op {
        Op(worker: 1, kind: .history, user: user, other: other, invoke: span.lowerBound, complete: span.upperBound, outcome: .ok,
           page: page.map { Op.Seen(i: $0.0, b: $0.1) })
    }

    static func undelivered(_ user: String = "u1", at span: ClosedRange<Int64>, _ messages: [Stored], acknowledged: Op.Outcome? = nil) -> Op {
        Op(worker: 2, kind: .undelivered, user: user, invoke: span.lowerBound, complete: span.upperBound, outcome: .ok,
           messages: messages, acknowledged: acknowledged)
    }

    static func delete(_ ids: [UInt64], by user: String = "u0", at span: ClosedRange<Int64>, _ outcome: Op.Outcome = .ok) -> Op {
        Op(worker: 3, kind: .delete, user: user, invoke: span.lowerBound, complete: span.upperBound, outcome: outcome, ids: ids)
    }

    static func stored(_ id: UInt64, _ body: String, from: String = "u0", to: String = "u1", delivered: Bool = false) -> Stored {
        Stored(id: id, sender: from, recipient: to, body: body, delivered: delivered)
    }

    /// The final state of `messages`, with what waits (the undelivered direct messages, and
    /// the group messages in `groupWaiting`) and unread counts that agree with them.
    static func final(_ messages: [Stored], groupWaiting: [String: [UInt64]] = [:], firstWrite: Double = 100) -> FinalState {
        var waiting: [String: [UInt64]] = ["u0": [], "u1": [], "u2": []]
        for m in messages where !m.delivered && m.group == nil { waiting[m.recipient, default: []].append(m.id) }
        for (user, ids) in groupWaiting { waiting[user, default: []] += ids }
        return FinalState(messages: messages, unread: waiting.mapValues { UInt64($0.count) }, waiting: waiting, firstWriteAfterHealMs: firstWrite)
    }

    static func groupSend(_ id: UInt64, _ body: String, _ from: String = "u0", at span: ClosedRange<Int64>) -> Op {
        Op(worker: 0, kind: .groupSend, user: from, group: "g", body: body, invoke: span.lowerBound, complete: span.upperBound, outcome: .ok, id: id)
    }

    static func groupStored(_ id: UInt64, _ body: String, from: String = "u0") -> Stored {
        Stored(id: id, sender: from, recipient: "", body: body, delivered: false, group: "g")
    }

    static func membership(_ kind: Op.Kind, _ user: String = "u2", at span: ClosedRange<Int64>) -> Op {
        Op(worker: 4, kind: kind, user: user, group: "g", invoke: span.lowerBound, complete: span.upperBound, outcome: .ok)
    }

    static let g = groupStored(5, "to the group")

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var operations: [Op]
        var final: FinalState
        var rules: Set<String>
        var testDescription: String { name }
    }

    static let a = stored(1, "a")

    static let cases: [Case] = [
        Case(name: "a clean history", operations: [
            send(1, "a", at: 0...10), history(at: 20...30, [(1, "a")]), undelivered(at: 40...50, [a], acknowledged: .ok),
            send(2, "b", at: 60...70), delete([2], at: 80...90),
        ], final: final([stored(1, "a", delivered: true)]), rules: []),
        Case(name: "phantom message", operations: [],
             final: final([stored(7, "never sent")]), rules: ["phantom message"]),
        Case(name: "stored twice", operations: [send(1, "a", at: 0...10)],
             final: final([a, stored(2, "a")]), rules: ["stored twice"]),
        Case(name: "failed send took effect", operations: [send(1, "a", at: 0...10, .fail)],
             final: final([a]), rules: ["failed send took effect"]),
        Case(name: "acknowledged under another id", operations: [send(1, "a", at: 0...10)],
             final: final([stored(2, "a")]), rules: ["acknowledged under another id"]),
        Case(name: "acknowledged send lost", operations: [send(1, "a", at: 0...10)],
             final: final([]), rules: ["acknowledged send lost"]),
        Case(name: "duplicate in a read", operations: [send(1, "a", at: 0...10), history(at: 20...30, [(1, "a"), (1, "a")])],
             final: final([a]), rules: ["duplicate in a read"]),
        Case(name: "read out of order", operations: [
            send(1, "a", at: 0...10), send(2, "b", at: 0...10), send(3, "c", at: 0...10),
            history(at: 20...30, [(2, "b"), (3, "c"), (1, "a")]),
        ], final: final([a, stored(2, "b"), stored(3, "c")]), rules: ["read out of order"]),
        Case(name: "phantom in a read", operations: [history(at: 20...30, [(9, "ghost")])],
             final: final([]), rules: ["phantom in a read", "shown message lost"]),
        Case(name: "read from the future", operations: [send(1, "a", at: 50...60), history(at: 20...30, [(1, "a")])],
             final: final([a]), rules: ["read from the future"]),
        Case(name: "stale read", operations: [send(1, "a", at: 0...10), history(at: 20...30, [])],
             final: final([a]), rules: ["stale read"]),
        Case(name: "read went back in time", operations: [
            send(1, "a", at: 0...10, .unknown), history(at: 20...30, [(1, "a")]), history(at: 40...50, []),
        ], final: final([a]), rules: ["read went back in time"]),
        Case(name: "read filled a gap", operations: [
            send(1, "a", at: 0...10), send(3, "c", at: 0...10), history(at: 20...30, [(3, "c"), (1, "a")]),
            send(2, "b", at: 35...36, .unknown), history(at: 40...50, [(3, "c"), (2, "b"), (1, "a")]),
        ], final: final([a, stored(2, "b"), stored(3, "c")]), rules: ["read filled a gap"]),
        Case(name: "someone else's message", operations: [
            send(1, "a", to: "u2", at: 0...10), undelivered(at: 20...30, [stored(1, "a", to: "u2")]),
        ], final: final([stored(1, "a", to: "u2")]), rules: ["someone else's message"]),
        Case(name: "delivered twice", operations: [
            send(1, "a", at: 0...10), undelivered(at: 20...30, [a], acknowledged: .ok), undelivered(at: 40...50, [a]),
        ], final: final([stored(1, "a", delivered: true)]), rules: ["delivered twice"]),
        Case(name: "acknowledged but undelivered", operations: [
            send(1, "a", at: 0...10), undelivered(at: 20...30, [a], acknowledged: .ok),
        ], final: final([a]), rules: ["acknowledged but undelivered"]),
        Case(name: "delivered unseen", operations: [send(1, "a", at: 0...10)],
             final: final([stored(1, "a", delivered: true)]), rules: ["delivered unseen"]),
        Case(name: "unread count", operations: [send(1, "a", at: 0...10)],
             final: FinalState(messages: [a], unread: ["u0": 0, "u1": 5], firstWriteAfterHealMs: 100), rules: ["unread count"]),
        Case(name: "slow recovery", operations: [], final: final([], firstWrite: 20_000), rules: ["slow recovery"]),
        Case(name: "delete did not stick", operations: [
            send(1, "a", at: 0...10), delete([1], at: 20...30), history(at: 40...50, [(1, "a")]),
        ], final: final([a]), rules: ["delete did not stick"]),
        Case(name: "a deleted message in a later read", operations: [
            send(1, "a", at: 0...10), delete([1], at: 20...30), history(at: 40...50, [(1, "a")]),
        ], final: final([]), rules: ["delete did not stick"]),
        Case(name: "a deleted message in a read before the delete", operations: [
            send(1, "a", at: 0...10), history(at: 20...30, [(1, "a")]), delete([1], at: 40...50),
        ], final: final([]), rules: []),
        Case(name: "shown message lost", operations: [send(1, "a", at: 0...10, .unknown), history(at: 20...30, [(1, "a")])],
             final: final([]), rules: ["shown message lost"]),
        Case(name: "stale undelivered read", operations: [send(1, "a", at: 0...10), undelivered(at: 20...30, [])],
             final: final([a]), rules: ["stale undelivered read"]),
        Case(name: "undelivered out of order", operations: [
            send(1, "a", at: 0...10), send(2, "b", at: 0...10), undelivered(at: 20...30, [stored(2, "b"), a]),
        ], final: final([a, stored(2, "b")]), rules: ["undelivered out of order"]),
        Case(name: "a clean group history", operations: [
            groupSend(5, "to the group", at: 0...10), undelivered("u1", at: 20...30, [g], acknowledged: .ok),
            membership(.groupLeave, at: 40...50), groupSend(6, "after", at: 60...70), membership(.groupAdd, at: 80...90),
            groupSend(7, "back", at: 100...110),
        ], final: final([g, groupStored(6, "after"), groupStored(7, "back")], groupWaiting: ["u1": [6, 7], "u2": [5, 7]]), rules: []),
        Case(name: "group message lost for a member", operations: [
            groupSend(5, "to the group", at: 0...10),
        ], final: final([g], groupWaiting: ["u2": [5]]), rules: ["group message lost for a member"]),
        Case(name: "group message delivered twice", operations: [
            groupSend(5, "to the group", at: 0...10), undelivered("u1", at: 20...30, [g], acknowledged: .ok),
        ], final: final([g], groupWaiting: ["u1": [5], "u2": [5]]), rules: ["group message delivered twice"]),
        Case(name: "an add begun before a leave commits after it", operations: [
            membership(.groupAdd, at: 0...30), membership(.groupLeave, at: 10...20), groupSend(5, "to the group", at: 40...50),
        ], final: final([g], groupWaiting: ["u1": [5], "u2": [5]]), rules: []),
        Case(name: "a lost group message a group read showed", operations: [
            Op(worker: 0, kind: .groupSend, user: "u0", group: "g", body: "to the group", invoke: 0, complete: 10, outcome: .unknown),
            Op(worker: 1, kind: .groupHistory, user: "u1", group: "g", invoke: 20, complete: 30, outcome: .ok, page: [Op.Seen(i: 5, b: "to the group")]),
        ], final: final([]), rules: ["shown message lost"]),
        Case(name: "group message after leaving", operations: [
            membership(.groupLeave, at: 0...10), groupSend(5, "to the group", at: 20...30),
        ], final: final([g], groupWaiting: ["u1": [5], "u2": [5]]), rules: ["group message after leaving"]),
    ]

    @Test(arguments: cases)
    func eachRuleFiresOnItsFaultAndNoOther(_ c: Case) {
        var checker = Checker(operations: c.operations, final: c.final)
        let fired = Set(checker.check().map(\.rule))
        #expect(fired == c.rules)
    }

    /// Every rule the checker has is one of the cases above.
    @Test func everyRuleHasACase() {
        var fired: Set<String> = []
        for c in Self.cases { fired.formUnion(c.rules) }
        #expect(fired.count == 25, "rules covered: \(fired.sorted())")
    }
}
