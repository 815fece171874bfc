import ArgumentParser
import Client
import ClusterPKI
import Foundation
import Synchronization
import ToolSupport

/// The client side of a fault-injection run, run inside the client's namespace: several
/// workers send (every body unique), read conversations, read undelivered messages and
/// delete, recording every operation. `--final` instead waits for a write to succeed and
/// reads back the whole state.
struct ChaosWorkload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chaos-workload", abstract: "The client side of `chorus-lab chaos` (run inside its client namespace).", shouldDisplay: false)

    @Option var endpoints: String
    /// The cluster's CA; plaintext without it.
    @Option var ca: String?
    @Option var users: Int = 5
    @Option var workers: Int = 6
    @Option var seconds: Double = 60
    @Option var seed: UInt64 = 1
    @Option var history: String
    @Option var final: String?

    var security: ClientSecurity { ca.map { .tls(ca: $0) } ?? .plaintext }

    static func name(_ n: Int) -> String { "u\(n)" }
    static let password = "chaos-password"
    /// The run's group: every user is a member; the first is its admin, and the last one
    /// leaves and is added back now and then.
    static let group = "chaos"

    func run() async throws {
        let list = endpoints.split(separator: ",").map(String.init)
        if let final {
            try await readFinal(endpoints: list, into: final)
        } else {
            try await work(endpoints: list)
        }
    }

    func work(endpoints: [String]) async throws {
        let log = try HistoryLog(path: history)
        try await withChorusClient(endpoints: endpoints, deadline: .seconds(4), security: security) { client in
            var tokens: [String] = []
            for n in 0..<users {
                let name = Self.name(n)
                try await retryUntilDone { try await client.createAccount(name: name, password: Self.password) }
                tokens.append(try await retryUntilDone { try await client.login(name: name, password: Self.password).token })
            }
            let first = tokens[0]
            try await retryUntilDone { _ = try await client.createGroup(token: first, name: Self.group, members: (1..<users).map(Self.name)) }
            let clock = ContinuousClock()
            let start = clock.now
            let end = start + Duration(seconds: seconds)
            let allTokens = tokens
            func nanos(_ instant: ContinuousClock.Instant) -> Int64 {
                let d = instant - start
                return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
            }
            // One more worker reads through clients pinned each to one node, followers
            // included: their linearizable reads are checked like the leader's.
            try await withPinnedClients(endpoints[...]) { pinned in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var random = SplitMix(seed: seed ^ 0x5EAD)
                    while clock.now < end {
                        let pick = Int(random.next() % UInt64(pinned.count))
                        let user = Int(random.next() % UInt64(users))
                        var other = Int(random.next() % UInt64(users - 1))
                        if other >= user { other += 1 }
                        var op = HistoryOperation(worker: workers, kind: .history, user: Self.name(user), invoke: nanos(clock.now), complete: 0, outcome: .ok)
                        op.node = endpoints[pick]
                        do {
                            if random.next() % 2 == 0 {
                                op.other = Self.name(other)
                                let page = try await pinned[pick].history(token: allTokens[user], with: Self.name(other), pageSize: Checker.pageSize)
                                op.page = page.messages.map { HistoryOperation.Seen(i: $0.id, b: $0.body) }
                            } else {
                                op.kind = .undelivered
                                let read = try await pinned[pick].readUndelivered(token: allTokens[user], limit: Checker.undeliveredLimit, acknowledge: false)
                                op.messages = read.messages.map(Self.message)
                            }
                        } catch {
                            op.outcome = Self.isDefinite(error) ? .fail : .unknown
                            op.error = "\(error)"
                        }
                        op.complete = nanos(clock.now)
                        log.append(op)
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                for worker in 0..<workers {
                    group.addTask {
                        var random = SplitMix(seed: seed &+ UInt64(worker) &* 0x9E37_79B9)
                        var sent: [(id: UInt64, user: Int)] = []
                        var n = 0
                        while clock.now < end {
                            let user = Int(random.next() % UInt64(users))
                            var other = Int(random.next() % UInt64(users - 1))
                            if other >= user { other += 1 }
                            let roll = random.next() % 100
                            let token = allTokens[user]
                            var op = HistoryOperation(worker: worker, kind: .send, user: Self.name(user), invoke: nanos(clock.now), complete: 0, outcome: .ok)
                            do {
                                switch roll {
                                case 40..<55:
                                    let body = "g\(worker)-\(n)"
                                    op.kind = .groupSend
                                    op.group = Self.group
                                    op.body = body
                                    op.id = try await client.sendToGroup(token: token, group: Self.group, body: body)
                                case 72..<78:
                                    op.kind = .groupHistory
                                    op.group = Self.group
                                    let page = try await client.groupHistory(token: token, group: Self.group, pageSize: Checker.pageSize)
                                    op.page = page.messages.filter { $0.change == nil }.map { HistoryOperation.Seen(i: $0.id, b: $0.body) }
                                    op.more = page.nextPageToken != nil
                                case 90..<92:
                                    // The last user leaves, or the admin adds it back.
                                    op.group = Self.group
                                    let churner = users - 1
                                    if roll == 90 {
                                        op.kind = .groupLeave
                                        op.user = Self.name(churner)
                                        try await client.leaveGroup(token: allTokens[churner], group: Self.group)
                                    } else {
                                        op.kind = .groupAdd
                                        op.user = Self.name(churner)
                                        _ = try await client.addGroupMembers(token: allTokens[0], group: Self.group, members: [Self.name(churner)])
                                    }
                                case 0..<40:
                                    let body = "w\(worker)-\(n)"
                                    op.other = Self.name(other)
                                    op.body = body
                                    let id = try await client.send(token: token, to: Self.name(other), body: body)
                                    op.id = id
                                    sent.append((id, user))
                                case 55..<72:
                                    op.kind = .history
                                    op.other = Self.name(other)
                                    let page = try await client.history(token: token, with: Self.name(other), pageSize: Checker.pageSize)
                                    op.page = page.messages.map { HistoryOperation.Seen(i: $0.id, b: $0.body) }
                                case 78..<90:
                                    op.kind = .undelivered
                                    let read = try await client.readUndelivered(token: token, limit: Checker.undeliveredLimit, acknowledge: false)
                                    op.messages = read.messages.map(Self.message)
                                    if !read.messages.isEmpty {
                                        op.acknowledged = .unknown
                                        do {
                                            _ = try await client.acknowledge(token: token, ids: read.messages.map(\.id))
                                            op.acknowledged = .ok
                                        } catch {
                                            op.acknowledged = Self.isDefinite(error) ? .fail : .unknown
                                            op.error = "\(error)"
                                        }
                                    }
                                default:
                                    guard !sent.isEmpty else { n += 1; continue }
                                    let victim = sent.remove(at: Int(random.next() % UInt64(sent.count)))
                                    op.kind = .delete
                                    op.user = Self.name(victim.user)
                                    op.ids = [victim.id]
                                    _ = try await client.deleteMessages(token: allTokens[victim.user], ids: [victim.id])
                                }
                                op.outcome = .ok
                            } catch {
                                op.outcome = Self.isDefinite(error) ? .fail : .unknown
                                op.error = "\(error)"
                            }
                            op.complete = nanos(clock.now)
                            log.append(op)
                            n += 1
                        }
                    }
                }
            }
            }
        }
        log.close()
    }

    /// Runs `body` with one client per endpoint, each pinned to its node: a read is served by
    /// that node whatever its role.
    func withPinnedClients<R: Sendable>(_ endpoints: ArraySlice<String>, _ clients: [ChorusClient] = [], _ body: ([ChorusClient]) async throws -> R) async throws -> R {
        guard let first = endpoints.first else { return try await body(clients) }
        return try await withChorusClient(endpoints: [first], deadline: .seconds(2), security: security) { client in
            try await withPinnedClients(endpoints.dropFirst(), clients + [client], body)
        }
    }

    /// After healing: the time until a write succeeds, then every conversation and unread count.
    func readFinal(endpoints: [String], into path: String) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let state = try await withChorusClient(endpoints: endpoints, deadline: .seconds(30), security: security) { client in
            let token = try await retryUntilDone { try await client.login(name: Self.name(0), password: Self.password).token }
            _ = try await retryUntilDone { try await client.send(token: token, to: Self.name(1), body: Checker.probeBody) }
            let firstWrite = clock.now - started
            var messages: Set<HistoryOperation.Message> = []
            var unread: [String: UInt64] = [:]
            for n in 0..<users {
                let mine = try await retryUntilDone { try await client.login(name: Self.name(n), password: Self.password).token }
                for other in 0..<users where other != n {
                    var pageToken: String?
                    repeat {
                        let page = try await retryUntilDone { try await client.history(token: mine, with: Self.name(other), pageSize: 1000, pageToken: pageToken) }
                        messages.formUnion(page.messages.map(Self.message))
                        pageToken = page.nextPageToken
                    } while pageToken != nil
                }
                unread[Self.name(n)] = try await retryUntilDone { try await client.readUndelivered(token: mine, limit: 1, acknowledge: false).unreadCount }
            }
            // The group's conversation, as its admin (who never leaves) reads it.
            var pageToken: String?
            repeat {
                let page = try await retryUntilDone { try await client.groupHistory(token: token, group: Self.group, pageSize: 1000, pageToken: pageToken) }
                messages.formUnion(page.messages.filter { $0.change == nil }.map(Self.message))
                pageToken = page.nextPageToken
            } while pageToken != nil
            // Last, what waits for each user, taken (and acknowledged) to the end.
            var waiting: [String: [UInt64]] = [:]
            for n in 0..<users {
                let mine = try await retryUntilDone { try await client.login(name: Self.name(n), password: Self.password).token }
                var ids: [UInt64] = []
                // Read, then acknowledge apart: an acknowledgement whose answer is lost is
                // tried again (harmless), and the page it took is already recorded.
                while case let page = try await retryUntilDone({ try await client.readUndelivered(token: mine, limit: 1000, acknowledge: false).messages }), !page.isEmpty {
                    ids += page.map(\.id).filter { !ids.contains($0) }
                    _ = try await retryUntilDone { try await client.acknowledge(token: mine, ids: page.map(\.id)) }
                }
                waiting[Self.name(n)] = ids
            }
            return FinalState(messages: messages.sorted { $0.id < $1.id }, unread: unread, waiting: waiting,
                              firstWriteAfterHealMs: firstWrite.milliseconds)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: path))
    }

    static func message(_ m: ChatMessage) -> HistoryOperation.Message {
        HistoryOperation.Message(id: m.id, sender: m.sender, recipient: m.recipient, body: m.body, delivered: m.delivered, group: m.group)
    }

    /// Whether an error says the operation certainly did not take effect.
    static func isDefinite(_ error: any Error) -> Bool {
        guard let error = error as? ChorusError else { return false }
        switch error {
        case .clusterUnavailable, .outcomeUnknown, .other: return false
        case .notFound, .alreadyExists, .wrongCredentials, .notAuthorized, .invalidInput, .failedPrecondition, .busy: return true
        }
    }

    /// Setup and final reads retry through faults (an account that now exists was created by
    /// an earlier attempt whose answer was lost).
    func retryUntilDone<R>(_ body: () async throws -> R) async throws -> R {
        let clock = ContinuousClock()
        let end = clock.now + .seconds(120)
        while true {
            do {
                return try await body()
            } catch ChorusError.alreadyExists(let message) {
                if R.self == Void.self { return () as! R }
                throw ChorusError.alreadyExists(message)
            } catch {
                guard clock.now < end else { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// A small seeded generator: runs replay with the same seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The history file, shared by the workers.
final class HistoryLog: Sendable {
    private let handle: Mutex<FileHandle>

    init(path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ToolError("cannot write \(path)") }
        self.handle = Mutex(handle)
    }

    func append(_ operation: HistoryOperation) {
        handle.withLock { HistoryFile.append(operation, to: $0) }
    }

    func close() {
        handle.withLock { try? $0.close() }
    }
}
