import API
import Client
import ClusterPKI
import Foundation
import GRPCCore
import Synchronization
import Testing
@testable import Node

/// What a session lets a caller do, at the boundary between a node and the network: nothing
/// without one reaches the log; a retry of a committed request gets its outcome whatever the
/// session became; a session's end ends its live streams.
extension EdgeTests {
    /// A token that is well formed and belongs to nobody.
    static func strangersToken() -> String {
        TokenText.encode((0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    /// A write of each kind with a well-formed token of no session: every one UNAUTHENTICATED,
    /// none of them an entry (the log's last index does not move), each counted; past the
    /// address's limit the node refuses without looking (RESOURCE_EXHAUSTED), while a caller
    /// with a live session from the same address goes on writing.
    @Test func writesWithoutALiveSessionNeverReachTheLog() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.metrics = true
        cluster.extraArguments = ["--unauthenticated-per-minute", "8"]
        try cluster.startAll()
        let (alice, lastBefore) = try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            // The leader raises the cluster version by itself a moment after its election:
            // that entry must come before the count starts.
            _ = try await UpgradeTests.waitForClusterVersion(2, client)
            return (alice, await client.status().first?.status?.lastIndex ?? 0)
        }
        let codes = try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            var codes: [RPCError.Code?] = []
            func code(_ call: () async throws -> Void) async -> RPCError.Code? {
                do { try await call(); return nil } catch let error as RPCError { return error.code } catch { return .unknown }
            }
            for n in UInt64(1)...3 {
                let id = Chorus_V1_RequestID.with { $0.clientID = "stranger-\(n)"; $0.sequence = 1 }
                let token = Self.strangersToken()
                codes.append(await code { _ = try await chat.sendMessage(.with { $0.requestID = id; $0.token = token; $0.recipient = "alice"; $0.body = "hi" }) })
                codes.append(await code { _ = try await chat.acknowledgeMessages(.with { $0.requestID = id; $0.token = token; $0.messageIds = [1] }) })
                codes.append(await code { _ = try await chat.deleteMessages(.with { $0.requestID = id; $0.token = token; $0.messageIds = [1] }) })
            }
            codes.append(await code { _ = try await chat.logout(.with { $0.requestID = .with { $0.clientID = "s"; $0.sequence = 1 }; $0.token = Self.strangersToken() }) })
            codes.append(await code { _ = try await chat.deleteAccount(.with { $0.requestID = .with { $0.clientID = "s"; $0.sequence = 2 }; $0.token = Self.strangersToken(); $0.password = "x" }) })
            // The address has used its 8: the next is refused before any work.
            codes.append(await code { _ = try await chat.sendMessage(.with { $0.requestID = .with { $0.clientID = "s"; $0.sequence = 3 }; $0.token = Self.strangersToken(); $0.recipient = "alice"; $0.body = "hi" }) })
            return codes
        }
        #expect(codes == Array(repeating: .unauthenticated, count: 8) + Array(repeating: .resourceExhausted, count: 4), "\(codes)")
        let lastAfter = try await cluster.withClient { client in await client.status().first?.status?.lastIndex ?? 0 }
        #expect(lastAfter == lastBefore, "refused writes became log entries")
        let metrics = try await httpGet(cluster.metricsAddress(1), "/metrics").body
        #expect(metrics.contains("chorus_unauthenticated_requests_total 8"), "\(metrics.split(separator: "\n").filter { $0.contains("unauthenticated") })")
        // A live session from the same address is not held back by the strangers.
        let sent = try await RawChat.send(cluster.address(1), security: cluster.security, clientID: "alice-1", sequence: 1, token: alice, to: "alice", body: "note to self")
        #expect(sent > lastBefore)
    }

    /// A retry (same request id) of a request that committed gets the original outcome, even
    /// when the session is gone by then: a send after a logout, an account deletion (which
    /// ends its own session). A new request of the ended session is refused.
    @Test func aRetryOfACommittedRequestGetsItsOutcomeWhateverBecameOfItsSession() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        try cluster.startAll()
        let (alice, bob) = try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            return (try await client.newUser("alice", password: "alice-pw"), try await client.newUser("bob"))
        }
        try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            let sendID = Chorus_V1_RequestID.with { $0.clientID = "alice-phone"; $0.sequence = 7; $0.firstOutstanding = 7 }
            let send = Chorus_V1_SendMessageRequest.with { $0.requestID = sendID; $0.token = alice; $0.recipient = "bob"; $0.body = "once" }
            let first = try await chat.sendMessage(send).messageID
            _ = try await chat.logout(.with { $0.requestID = .with { $0.clientID = "alice-laptop"; $0.sequence = 1 }; $0.token = alice })
            #expect(try await chat.sendMessage(send).messageID == first, "the retry is told the message it stored")
            await #expect(throws: RPCError.self) {
                var next = send
                next.requestID.sequence = 8
                next.requestID.firstOutstanding = 8
                _ = try await chat.sendMessage(next)
            }

            let deleteID = Chorus_V1_RequestID.with { $0.clientID = "bob-web"; $0.sequence = 1; $0.firstOutstanding = 1 }
            let delete = Chorus_V1_DeleteAccountRequest.with { $0.requestID = deleteID; $0.token = bob; $0.password = "wrong" }
            await #expect(throws: RPCError.self) { _ = try await chat.deleteAccount(delete) }
        }
        // An account deleted with its right password; then the retry of that deletion.
        let carol = try await cluster.withClient { client in
            try await client.createAccount(name: "carol", password: "carol-pw")
            return try await client.login(name: "carol", password: "carol-pw").token
        }
        try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            let delete = Chorus_V1_DeleteAccountRequest.with {
                $0.requestID = .with { $0.clientID = "carol-web"; $0.sequence = 3; $0.firstOutstanding = 3 }
                $0.token = carol
                $0.password = "carol-pw"
            }
            _ = try await chat.deleteAccount(delete)
            // The answer was lost; the retry must not say the password was wrong.
            _ = try await chat.deleteAccount(delete)
            do {
                var again = delete
                again.requestID.sequence = 4
                again.requestID.firstOutstanding = 4
                _ = try await chat.deleteAccount(again)
                Issue.record("a new deletion by an ended session succeeded")
            } catch let error as RPCError {
                #expect(error.code == .unauthenticated)
            }
        }
    }

    /// Reads one subscription until it ends: the events' kinds and the status it ended with.
    static func watch(_ chat: Chorus_V1_Chat.Client<some ClientTransport>, token: String, until ended: @escaping @Sendable (Chorus_V1_Event) -> Bool = { _ in false }) async -> (events: [String], end: RPCError.Code?) {
        let kinds = Mutex<[String]>([])
        do {
            try await chat.subscribe(.with { $0.token = token }) { response in
                for try await event in response.messages {
                    let kind = switch event.kind {
                    case .attached?: "attached"
                    case let .messageReceived(m)?: "message \(m.body)"
                    case let .presence(p)?: "\(p.name) \(p.online ? "online" : "offline")"
                    default: "other"
                    }
                    kinds.withLock { $0.append(kind) }
                    if ended(event) { return }
                }
            }
            return (kinds.withLock { $0 }, nil)
        } catch let error as RPCError {
            return (kinds.withLock { $0 }, error.code)
        } catch {
            return (kinds.withLock { $0 }, .unknown)
        }
    }

    /// A logout ends that session's streams at once, and no other session's; deleting the
    /// account ends the rest; a session that expires ends its streams when it does.
    @Test func aSessionsEndEndsItsLiveStreams() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--session-lifetime-hours", "0.002"]
        try cluster.startAll()
        let (first, second, bob) = try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let first = try await client.newUser("alice", password: "pw-a")
            let second = try await client.login(name: "alice", password: "pw-a").token
            return (first, second, try await client.newUser("bob"))
        }
        let started = ContinuousClock.now
        try await RawChat.withStub(cluster.address(1), security: cluster.security) { raw in
            let chat = Chorus_V1_Chat.Client(wrapping: raw)
            async let stolen = Self.watch(chat, token: first)
            async let kept = Self.watch(chat, token: second)
            try await Task.sleep(for: .milliseconds(500))
            _ = try await chat.logout(.with { $0.requestID = .with { $0.clientID = "alice-1"; $0.sequence = 1 }; $0.token = first })
            let ended = await stolen
            #expect(ended.end == .unauthenticated, "\(ended)")
            _ = try await chat.sendMessage(.with { $0.requestID = .with { $0.clientID = "bob-1"; $0.sequence = 1 }; $0.token = bob; $0.recipient = "alice"; $0.body = "still there?" })
            // The other session reads on until it expires (the lifetime is 7.2 s).
            let other = await kept
            #expect(other.events.contains("message still there?"), "\(other)")
            #expect(other.end == .unauthenticated, "\(other)")
            #expect(ContinuousClock.now - started > .seconds(5), "the stream ended before its session expired")
        }
    }
}

extension EdgeTests {
    /// The library acknowledges a pushed message when the application takes it from the
    /// subscription, not when it reaches the library's buffer: a message buffered and never
    /// taken (the application stopped reading) stays waiting.
    @Test func aSubscriptionAcknowledgesOnlyWhatTheApplicationTook() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            let reader = Task {
                var iterator = client.subscribe(token: bob).makeAsyncIterator()
                guard case .attached? = try await iterator.next() else { return "" }
                // Both are sent once the stream is live; the second then waits in the buffer.
                _ = try await client.send(token: alice, to: "bob", body: "taken")
                _ = try await client.send(token: alice, to: "bob", body: "left in the buffer")
                let taken = try await nextMessage(&iterator)
                try await Task.sleep(for: .milliseconds(500))
                return taken?.body ?? ""
            }
            #expect(try await reader.value == "taken")
            var waiting: [String] = []
            for _ in 0..<50 {
                waiting = try await client.readUndelivered(token: bob, limit: 10, acknowledge: false).messages.map(\.body)
                if waiting == ["left in the buffer"] { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(waiting == ["left in the buffer"])
        }
    }
}

extension EdgeTests {
    /// Behind a web gateway every browser arrives from the gateway's address. The gateway
    /// names each call's browser; the node counts failed logins per named browser when, and
    /// only when, the caller proved with a `web` certificate that it is a gateway of this
    /// cluster: a few attackers then lock out only themselves.
    @Test func aWebGatewaysBrowsersAreLimitedEachOnTheirOwn() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        cluster.extraArguments = ["--failed-logins-per-minute", "2"]
        try cluster.startAll()
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            try await client.createAccount(name: "victim", password: "right")
        }
        func guesses(_ security: ClientSecurity, from addresses: [String]) async throws -> [String] {
            try await withChorusClient(endpoints: [cluster.peerAddress(1)], deadline: .seconds(3), security: security) { client in
                var outcomes: [String] = []
                for address in addresses {
                    do {
                        _ = try await ForwardedFor.$address.withValue(address) { try await client.login(name: "victim", password: "guess") }
                        outcomes.append("logged in")
                    } catch let error as ChorusError {
                        outcomes.append(error.kind)
                    }
                }
                return outcomes
            }
        }
        let web = CertificateDirectory(cluster.certificates).web("local")
        #expect(try await guesses(.mutualTLS(web), from: ["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "fd00::7"])
                == ["wrongCredentials", "wrongCredentials", "busy", "wrongCredentials", "wrongCredentials"])
        // An operator's certificate proves no gateway: what it names is ignored, and its own
        // address is what runs out.
        #expect(try await guesses(.mutualTLS(cluster.credentials(0)), from: ["10.0.0.3", "10.0.0.4", "10.0.0.5"])
                == ["wrongCredentials", "wrongCredentials", "busy"])
    }
}
