import Foundation
import Raft
import Testing
@testable import Projections

/// Random but well-formed (and deliberately sometimes invalid) command sequences.
///
/// With `groups`, the cluster runs version 3 from the first entry and sessions never end, so
/// that group commands mostly find their sessions and groups; otherwise version 3 comes a
/// third of the way in, and sessions end often.
func randomCommands(seed: UInt64, count: Int, groups: Bool = false) throws -> [[UInt8]] {
    var rng = SplitMix64(state: seed)
    let names = ["ann", "bob", "cy", "dee", "eve", "bad name"]
    let tokens = names.map { Data(Credentials.tokenHash(Array("token-\($0)".utf8))) }
    var commands: [[UInt8]] = []
    var clock: Int64 = 1_700_000_000_000
    if groups {
        // Everyone has an account and a session from the start.
        for (who, name) in names.enumerated() where name != "bad name" {
            let create = Command.with { $0.version = 2; $0.timestampMs = clock; $0.createAccount = .with { $0.name = name; $0.salt = Data([1]); $0.iterations = 1; $0.passwordHash = Data([UInt8(who)]) } }
            let login = Command.with { $0.version = 2; $0.timestampMs = clock; $0.openSession = .with { $0.name = name; $0.tokenHash = tokens[who] } }
            commands += [try create.serializedBytes(), try login.serializedBytes()]
        }
    }
    for step in 0..<count {
        var command = Command()
        // Both formats: newest-only (1) and the window of results (2).
        command.version = UInt32.random(in: 1...2, using: &rng)
        // Up to 90 s between entries, so sessions are touched and end; leaders' clocks differ,
        // so a timestamp may be behind the one before.
        clock += Int64.random(in: 0...90_000, using: &rng)
        // Now and then a day passes: idle clients are forgotten.
        if Int.random(in: 0..<60, using: &rng) == 0 { clock += 86_400_000 }
        command.timestampMs = clock - Int64.random(in: 0...30_000, using: &rng)
        command.clientID = "client-\(Int.random(in: 0..<3, using: &rng))"
        command.sequence = UInt64(step / 2)  // some duplicates on purpose
        command.firstOutstanding = UInt64.random(in: 0...command.sequence, using: &rng)
        let who = Int.random(in: 0..<names.count, using: &rng)
        let other = names[Int.random(in: 0..<names.count, using: &rng)]
        let ids = (0..<Int.random(in: 1...3, using: &rng)).map { _ in UInt64.random(in: 1...UInt64(max(1, step)), using: &rng) }
        let group = ["g1", "g2"][Int.random(in: 0..<2, using: &rng)]
        let members = (0..<Int.random(in: 0...3, using: &rng)).map { _ in names[Int.random(in: 0..<names.count, using: &rng)] }
        // Groups from a third of the way on: before, they are refused by the cluster version.
        if step == (groups ? 0 : count / 3) {
            // As a leader proposes it: no client, so never taken for another's retry.
            command.clientID = ""
            command.setClusterVersion = .with { $0.version = 3 }
            commands.append(try command.serializedBytes())
            continue
        }
        switch Int.random(in: 0..<15, using: &rng) {
        case 0: command.createAccount = .with { $0.name = names[who]; $0.salt = Data([1]); $0.iterations = 1; $0.passwordHash = Data([UInt8(who)]) }
        case 1:
            let idle = groups ? 0 : [0, 200_000].randomElement(using: &rng)!
            let lifetime = groups ? 0 : [0, 2_000_000].randomElement(using: &rng)!
            command.openSession = .with { $0.name = names[who]; $0.tokenHash = tokens[who]; $0.idleMs = Int64(idle); $0.lifetimeMs = Int64(lifetime) }
        case 2, 3, 4: command.sendMessage = .with { $0.tokenHash = tokens[who]; $0.recipient = other; $0.body = "body \(step)" }
        case 5: command.acknowledge = .with { $0.tokenHash = tokens[who]; $0.messageIds = ids }
        case 6: command.deleteMessages = .with { $0.tokenHash = tokens[who]; $0.messageIds = ids }
        case 7: command.attach = .with { $0.tokenHash = tokens[who]; $0.subscriptionID = UInt64(who + 1) }
        case 8: if Int.random(in: 0..<(groups ? 8 : 2), using: &rng) == 0 { command.deleteAccount = .with { $0.tokenHash = tokens[who] } } else { command.detachAll = DetachAll() }
        case 10: command.createGroup = .with { $0.tokenHash = tokens[who]; $0.name = group; $0.members = members }
        case 11:
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: command.addGroupMembers = .with { $0.tokenHash = tokens[who]; $0.group = group; $0.members = members }
            case 1: command.removeGroupMembers = .with { $0.tokenHash = tokens[who]; $0.group = group; $0.members = members }
            case 2: command.renameGroup = .with { $0.tokenHash = tokens[who]; $0.group = group; $0.name = group == "g1" ? "g2" : "g1" }
            default: command.setGroupAdmin = .with { $0.tokenHash = tokens[who]; $0.group = group; $0.member = other; $0.admin = Bool.random(using: &rng) }
            }
        case 12: command.leaveGroup = .with { $0.tokenHash = tokens[who]; $0.group = group }
        case 13, 14: command.sendGroupMessage = .with { $0.tokenHash = tokens[who]; $0.group = group; $0.body = "to \(group) \(step)" }
        default:
            if groups && Int.random(in: 0..<3, using: &rng) > 0 {
                command.openSession = .with { $0.name = names[who]; $0.tokenHash = tokens[who] }  // back after a logout
            } else {
                command.closeSession = .with { $0.tokenHash = tokens[who] }
            }
        }
        commands.append(try command.serializedBytes())
    }
    return commands
}

@Suite struct DeterminismTests {
    @Test(arguments: 0..<12)
    func twoStoresFedTheSameCommandsAgree(seed: UInt64) throws {
        try agree(try randomCommands(seed: seed, count: 300), seed: seed)
    }

    /// The same, with groups from the start: creating, changing, leaving, sending to them,
    /// and accounts deleted out of them.
    @Test(arguments: 100..<108)
    func twoStoresFedGroupCommandsAgree(seed: UInt64) throws {
        let results = try agree(try randomCommands(seed: seed, count: 400, groups: true), seed: seed)
        let groupSends = results.filter { $0.events.contains { if case .groupMessageSent = $0 { true } else { false } } }
        let changes = results.filter { $0.events.contains { if case .groupChanged = $0 { true } else { false } } }
        #expect(groupSends.count >= 2 && changes.count >= 2, "seed \(seed): \(groupSends.count) group sends, \(changes.count) changes")
    }

    /// Applies `commands` in one batch, in uneven batches, one at a time and as a rebuild:
    /// all four agree. Returns the one-batch results.
    @discardableResult
    func agree(_ commands: [[UInt8]], seed: UInt64) throws -> [Applied] {
        let a = try Harness(), b = try Harness()
        // One store applies everything in one batch, the other in uneven batches: batching
        // must not change the result.
        let entries = commands.enumerated().map { CommittedEntry(index: UInt64($0.offset + 1), command: $0.element) }
        let resultsA = try a.state.apply(entries)
        var resultsB: [Applied] = []
        var rest = entries[...]
        var rng = SplitMix64(state: seed)
        while !rest.isEmpty {
            let n = Int.random(in: 1...40, using: &rng)
            resultsB += try b.state.apply(Array(rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
        // A third applies one entry per transaction: what a batch gathers and defers (reads
        // of sessions and users, exactly-once rows, index rows of sends) must not show.
        let c = try Harness()
        let resultsC = try entries.flatMap { try c.state.apply([$0]) }
        // A fourth rebuilds as replay does, without outcomes or events, in one batch.
        let d = try Harness()
        try d.state.replay(entries)
        #expect(try a.state.digest() == b.state.digest(), "seed \(seed)")
        #expect(try a.state.digest() == c.state.digest(), "seed \(seed)")
        #expect(try a.state.digest() == d.state.digest(), "seed \(seed)")
        #expect(resultsA.map(\.outcome) == resultsB.map(\.outcome))
        #expect(resultsA.map(\.outcome) == resultsC.map(\.outcome))
        #expect(resultsA.map(\.events) == resultsC.map(\.events))
        #expect(resultsA.contains { (try? $0.outcome.get()) != nil }, "the sequence did something")

        // Replaying every entry again changes nothing.
        let digest = try a.state.digest()
        #expect(try a.state.apply(entries).isEmpty)
        #expect(try a.state.digest() == digest)
        return resultsA
    }

    @Test func differentStatesHaveDifferentDigests() throws {
        let a = try Harness(), b = try Harness()
        _ = try a.createAccount("alice")
        _ = try b.createAccount("alicia")
        #expect(try a.state.digest() != b.state.digest())
    }
}
