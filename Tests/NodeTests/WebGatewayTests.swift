import Client
import ClusterPKI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import Testing
import WebGateway

/// The web gateway's API in front of a real 3-node cluster: sessions and their cookie, the
/// same-origin rules, errors in words, limits, every chat call, and the live channel.
@Suite(.serialized, .inProcessClusters) struct WebGatewayTests {
    /// Runs `body` with the gateway's routes (no live channel) before a fresh cluster.
    static func withGateway(tls: Bool = false, limits: GatewayConfiguration.Limits = .init(), _ body: @escaping @Sendable (GatewayHTTP, ChorusClient) async throws -> Void) async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            var configuration = GatewayConfiguration()
            configuration.limits = limits
            if tls { configuration.tls = CertificateDirectory(cluster.certificates).web("local") }
            let app = Application(router: try WebGateway.router(client: client, configuration: configuration))
            try await GatewayHTTP.serving(app) { http in try await body(http, client) }
        }
    }

    static let json: HTTPFields = [.contentType: "application/json"]

    /// Opens the live channel and keeps every text frame in `frames` until it closes, or
    /// until a frame of type `until` arrives (then this end closes it).
    static func live(_ http: GatewayHTTP, headers: HTTPFields, into frames: Frames, until: String? = nil) async throws {
        do {
            try await http.ws("/api/events", headers: headers) { text in
                frames.append(text)
                return until.map { text.contains(#""type":"\#($0)""#) } ?? false
            }
            frames.ended("the channel closed")
        } catch {
            frames.ended("the channel failed: \(error)")
            throw error
        }
    }

    static func body(_ object: [String: Any]) -> ByteBuffer {
        ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
    }

    static func decode(_ response: GatewayHTTP.Response) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any] ?? [:]
    }

    static func errorMessage(_ response: GatewayHTTP.Response) throws -> String? {
        (try decode(response)["error"] as? [String: Any])?["message"] as? String
    }

    /// Registers `name` and returns the `Cookie` header that carries its session.
    static func register(_ http: GatewayHTTP, _ name: String, password: String = "password-1") async throws -> HTTPFields {
        let response = try await http.execute(uri: "/api/accounts", method: .post, headers: json, body: body(["name": name, "password": password]))
        #expect(response.status == .created, "registering \(name): \(String(buffer: response.body))")
        let setCookie = try #require(response.headers[.setCookie])
        let pair = try #require(setCookie.split(separator: ";").first)
        var headers = json
        headers[.cookie] = String(pair)
        return headers
    }

    @Test func sessionCookieIsHttpOnlyStrictAndSecureOverTLS() async throws {
        try await Self.withGateway(tls: true) { http, _ in
            let response = try await http.execute(uri: "/api/accounts", method: .post, headers: Self.json, body: Self.body(["name": "carol", "password": "password-1"]))
            #expect(response.status == .created)
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.hasPrefix("chorus_session=carol:"))
            for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
                #expect(cookie.contains(attribute), "\(attribute) missing from \(cookie)")
            }
            #expect(try Self.decode(response)["name"] as? String == "carol")
            #expect(try Self.decode(response)["unread"] as? Int == 0)
        }
    }

    /// The gateway's HTTPS listener speaks what a node's do (`ServerTLS`): TLS 1.3, and TLS 1.2
    /// only with AEAD suites.
    @Test func httpsListenerRefusesCBCSuites() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in
            var configuration = GatewayConfiguration()
            configuration.port = 0
            configuration.tls = CertificateDirectory(cluster.certificates).web("local")
            let ca = CertificateDirectory(cluster.certificates).ca
            let app = try WebGateway.application(client: client, configuration: configuration, logger: Logger(label: "test-web"))
            try await GatewayHTTP.serving(app) { http async throws in
                let address = "127.0.0.1:\(http.port)"
                #expect(try await TLSProbe.handshake(address, ca: ca) == .negotiated(.tlsv13))
                #expect(try await TLSProbe.handshake(address, ca: ca, maximum: .tlsv12, suites: [.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]) == .negotiated(.tlsv12))
                #expect(try await TLSProbe.handshake(address, ca: ca, maximum: .tlsv12, suites: [.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]) == .refused)
            }
        }
    }

    @Test func registerLoginLogoutAndNameChecks() async throws {
        try await Self.withGateway { http, _ in
            let free = try await http.execute(uri: "/api/names/dave", method: .get)
            #expect(try Self.decode(free)["available"] as? Bool == true)
            let alice = try await Self.register(http, "alice")
            let taken = try await http.execute(uri: "/api/names/alice", method: .get)
            #expect(try Self.decode(taken)["available"] as? Bool == false)
            #expect(try Self.decode(taken)["reason"] as? String == "The name 'alice' is taken.")
            let bad = try await http.execute(uri: "/api/names/al%20ice", method: .get)
            #expect(try Self.decode(bad)["reason"] as? String == "The account name 'al ice' may only hold letters, digits, '_', '.' and '-'.")

            let me = try await http.execute(uri: "/api/session", method: .get, headers: alice)
            #expect(me.status == .ok)
            #expect(try Self.decode(me)["name"] as? String == "alice")

            let again = try await http.execute(uri: "/api/accounts", method: .post, headers: Self.json, body: Self.body(["name": "alice", "password": "password-9"]))
            #expect(again.status == .conflict)
            #expect(try Self.errorMessage(again) == "The name 'alice' is taken.")
            let short = try await http.execute(uri: "/api/accounts", method: .post, headers: Self.json, body: Self.body(["name": "erin", "password": "short"]))
            #expect(short.status == .badRequest)
            #expect(try Self.errorMessage(short) == "Choose a password of at least 8 characters.")

            let wrong = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "alice", "password": "password-2"]))
            #expect(wrong.status == .unauthorized)
            #expect(try Self.errorMessage(wrong) == "Wrong name or password.")
            let nobody = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "nobody", "password": "password-2"]))
            #expect(nobody.status == .unauthorized)
            #expect(try Self.errorMessage(nobody) == "Wrong name or password.")
            let right = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "alice", "password": "password-1"]))
            #expect(right.status == .ok)
            #expect(right.headers[.setCookie]?.hasPrefix("chorus_session=alice:") == true)

            let out = try await http.execute(uri: "/api/session/end", method: .post, headers: alice, body: Self.body([:]))
            #expect(out.status == .noContent)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            // The token is dead on the cluster, not just forgotten by the browser.
            let after = try await http.execute(uri: "/api/accounts", method: .get, headers: alice)
            #expect(after.status == .unauthorized)
            let anonymous = try await http.execute(uri: "/api/accounts", method: .get)
            #expect(anonymous.status == .unauthorized)
            #expect(try Self.errorMessage(anonymous) == "You are not logged in.")
        }
    }

    @Test func nothingChangesFromAnotherSiteOrWithoutJSON() async throws {
        try await Self.withGateway { http, _ in
            let alice = try await Self.register(http, "alice")
            _ = try await Self.register(http, "bob")
            var form = alice
            form[.contentType] = "application/x-www-form-urlencoded"
            let asForm = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: form, body: ByteBuffer(string: "body=hi"))
            #expect(asForm.status == .unsupportedMediaType)
            var foreign = alice
            foreign[HTTPField.Name("Origin")!] = "https://evil.example"
            let crossSite = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: foreign, body: Self.body(["body": "hi"]))
            #expect(crossSite.status == .forbidden)
            #expect(try Self.errorMessage(crossSite) == "This request came from another site and was refused.")
            var fetched = alice
            fetched[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            let crossFetch = try await http.execute(uri: "/api/session/end", method: .post, headers: fetched, body: Self.body([:]))
            #expect(crossFetch.status == .forbidden)
            // No GET changes anything: the state-changing paths do not answer GET.
            for path in ["/api/session/end", "/api/inbox/read", "/api/messages/delete", "/api/account/delete"] {
                let get = try await http.execute(uri: path, method: .get, headers: alice)
                #expect(get.status == .notFound || get.status == .methodNotAllowed, "GET \(path) answered \(get.status)")
            }
            let delete = try await http.execute(uri: "/api/session", method: .delete, headers: alice)
            #expect(delete.status == .methodNotAllowed)
            // Still logged in, and nothing was sent.
            let history = try await http.execute(uri: "/api/conversations/bob", method: .get, headers: alice)
            #expect((try Self.decode(history)["messages"] as? [Any])?.count == 0)
        }
    }

    @Test func chatCallsCarryBodiesVerbatimAndAnswerInWords() async throws {
        try await Self.withGateway { http, _ in
            let alice = try await Self.register(http, "alice")
            let bob = try await Self.register(http, "bob")
            let hostile = "<img src=x onerror=alert(1)> & \"quotes\" 😀\n<script>alert(2)</script>"
            let sent = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: alice, body: Self.body(["body": hostile]))
            #expect(sent.status == .ok)
            let message = try Self.decode(sent)
            #expect(message["body"] as? String == hostile)
            #expect(message["from"] as? String == "alice")
            #expect(message["to"] as? String == "bob")
            let id = try #require(message["id"] as? String)

            for text in ["second", "third"] {
                let more = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: alice, body: Self.body(["body": text]))
                #expect(more.status == .ok)
            }
            // Read N: the oldest two, shown (so delivered), then the last, then nothing.
            let firstTwo = try Self.decode(try await http.execute(uri: "/api/inbox/read", method: .post, headers: bob, body: Self.body(["limit": 2])))
            #expect((firstTwo["messages"] as? [[String: Any]])?.map { $0["body"] as? String } == [hostile, "second"])
            #expect(firstTwo["unread"] as? Int == 3, "waiting until shown")
            let ids = (firstTwo["messages"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            let shown = try await http.execute(uri: "/api/messages/shown", method: .post, headers: bob, body: Self.body(["ids": ids]))
            #expect(try Self.decode(shown)["deleted"] as? Int == 2)
            let last = try Self.decode(try await http.execute(uri: "/api/inbox/read", method: .post, headers: bob, body: Self.body(["limit": 5])))
            #expect((last["messages"] as? [[String: Any]])?.map { $0["body"] as? String } == ["third"])
            #expect(last["unread"] as? Int == 1)
            let zero = try await http.execute(uri: "/api/inbox/read", method: .post, headers: bob, body: Self.body(["limit": 0]))
            #expect(zero.status == .badRequest)
            #expect(try Self.errorMessage(zero) == "Read between 1 and 200 messages at a time.")

            let history = try Self.decode(try await http.execute(uri: "/api/conversations/alice", method: .get, headers: bob))
            #expect((history["messages"] as? [[String: Any]])?.map { $0["body"] as? String } == ["third", "second", hostile])

            let nobody = try await http.execute(uri: "/api/conversations/zed", method: .post, headers: alice, body: Self.body(["body": "hello?"]))
            #expect(nobody.status == .notFound)
            #expect(try Self.errorMessage(nobody) == "There is no account named 'zed'.")
            let long = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: alice, body: Self.body(["body": String(repeating: "x", count: 64 * 1024 + 1)]))
            #expect(long.status == .badRequest)
            #expect(try Self.errorMessage(long) == "The message is 65537 bytes; the limit is 65536.")
            let huge = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: alice, body: Self.body(["body": String(repeating: "y", count: GatewayContext.maxRequestBytes)]))
            #expect(huge.status == .contentTooLarge)
            let garbage = try await http.execute(uri: "/api/conversations/bob", method: .post, headers: alice, body: ByteBuffer(string: "{\"body\": 12"))
            #expect(garbage.status == .badRequest)

            // Bob deletes the first message: gone for both.
            let badID = try await http.execute(uri: "/api/messages/delete", method: .post, headers: bob, body: Self.body(["ids": ["abc"]]))
            #expect(badID.status == .badRequest)
            #expect(try Self.errorMessage(badID) == "'abc' is not a message id.")
            let deleted = try await http.execute(uri: "/api/messages/delete", method: .post, headers: bob, body: Self.body(["ids": [id]]))
            #expect(try Self.decode(deleted)["deleted"] as? Int == 1)
            let remaining = try Self.decode(try await http.execute(uri: "/api/conversations/bob", method: .get, headers: alice))
            #expect((remaining["messages"] as? [[String: Any]])?.map { $0["body"] as? String } == ["third", "second"])

            let accounts = try Self.decode(try await http.execute(uri: "/api/accounts?pattern=b*", method: .get, headers: alice))
            #expect((accounts["accounts"] as? [[String: Any]])?.map { $0["name"] as? String } == ["bob"])
        }
    }

    /// One address cannot create accounts or guess passwords without end; the answer says when
    /// to come back.
    @Test func registrationsAndFailedLoginsAreLimitedPerAddress() async throws {
        var limits = GatewayConfiguration.Limits()
        limits.accountsPerMinute = 2
        limits.failedLoginsPerMinute = 2
        try await Self.withGateway(limits: limits) { http, _ in
            _ = try await Self.register(http, "first")
            _ = try await Self.register(http, "second")
            let third = try await http.execute(uri: "/api/accounts", method: .post, headers: Self.json, body: Self.body(["name": "third", "password": "password-1"]))
            #expect(third.status == .tooManyRequests)
            // The bucket refills one account per 30 s from the second registration on: the
            // wait is what is left of those 30 s, to the second.
            let wait = try #require(third.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...30).contains(wait))
            #expect(try Self.errorMessage(third) == "Too many new accounts from your address; try again in \(wait) s.")
            for _ in 0..<2 {
                let wrong = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "first", "password": "password-2"]))
                #expect(wrong.status == .unauthorized)
            }
            // Even the right password waits now: guessing is what the limit is for.
            let right = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "first", "password": "password-1"]))
            #expect(right.status == .tooManyRequests)
            #expect(try Self.errorMessage(right)?.hasPrefix("Too many failed logins from your address; try again in ") == true)
        }
    }

    /// With no node up, a call waits out the client's deadline and says so in words.
    @Test func aClusterWithoutLeaderIsSaidInWords() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient(deadline: .seconds(2)) { client in
            _ = try await cluster.waitForLeader(client)
            let app = Application(router: try WebGateway.router(client: client, configuration: GatewayConfiguration()))
            try await GatewayHTTP.serving(app) { http in
                let alice = try await Self.register(http, "alice")
                await cluster.shutDownAll()
                // A read reached nobody: unavailable, nothing done.
                let check = try await http.execute(uri: "/api/names/bob", method: .get)
                #expect(check.status == .serviceUnavailable)
                #expect(try Self.errorMessage(check) == "The cluster is unavailable right now (it may be electing a new leader), and nothing reached it. Try again in a moment.")
                // So did a send: no connection opened, so nothing was sent (had one broken
                // with the send in flight, the answer would be 504, "may have been done").
                let send = try await http.execute(uri: "/api/conversations/alice", method: .post, headers: alice, body: Self.body(["body": "anyone?"]))
                #expect(send.status == .serviceUnavailable)
                #expect(try Self.errorMessage(send) == "The cluster is unavailable right now (it may be electing a new leader), and nothing reached it. Try again in a moment.")
                // Logging out clears the cookie whatever the cluster (here: nobody) answers.
                let logout = try await http.execute(uri: "/api/session/end", method: .post, headers: alice, body: Self.body([:]))
                #expect(logout.status == .noContent)
                #expect(logout.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
        }
    }

    @Test func deletingTheAccountNeedsThePassword() async throws {
        try await Self.withGateway { http, _ in
            let alice = try await Self.register(http, "alice", password: "password-1")
            let wrong = try await http.execute(uri: "/api/account/delete", method: .post, headers: alice, body: Self.body(["password": "password-2"]))
            #expect(wrong.status == .forbidden)
            #expect(try Self.errorMessage(wrong) == "That password is not right; the account was not deleted.")
            let right = try await http.execute(uri: "/api/account/delete", method: .post, headers: alice, body: Self.body(["password": "password-1"]))
            #expect(right.status == .noContent)
            #expect(right.headers[.setCookie]?.contains("Max-Age=0") == true)
            let login = try await http.execute(uri: "/api/session", method: .post, headers: Self.json, body: Self.body(["name": "alice", "password": "password-1"]))
            #expect(login.status == .unauthorized)
            let free = try await http.execute(uri: "/api/names/alice", method: .get)
            #expect(try Self.decode(free)["available"] as? Bool == true)
        }
    }

    @Test func pagesAreServedFromMemoryWithAStrictPolicy() async throws {
        try await Self.withGateway { http, _ in
            let page = try await http.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(page.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(policy.contains("script-src 'self'"))
            #expect(policy.contains("frame-ancestors 'none'"))
            #expect(page.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            let etag = try #require(page.headers[.eTag])
            let again = try await http.execute(uri: "/", method: .get, headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            let script = try await http.execute(uri: "/app.js", method: .get)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            // Inline script is never used: the policy forbids it, so the page must not need it.
            #expect(!String(buffer: page.body).contains("<script>"))
            for path in ["/../Package.swift", "/%2e%2e/Package.swift", "/nothing.js", "/api/nothing"] {
                let missing = try await http.execute(uri: path, method: .get)
                #expect(missing.status == .notFound, "\(path) answered \(missing.status)")
            }
        }
    }

    /// The live channel: the first frame says how many messages wait, messages that waited
    /// are not pushed (they are read N at a time), new ones are, marked delivered once pushed;
    /// presence and deletions arrive as they happen.
    @Test func liveChannelPushesNewMessagesAndLeavesWaitingOnes() async throws {
        let cluster = try TestCluster(size: 3, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            var configuration = GatewayConfiguration()
            configuration.port = 0
            let app = try WebGateway.application(client: client, configuration: configuration, logger: Logger(label: "test-web"))
            try await GatewayHTTP.serving(app) { http in
                let alice = try await Self.register(http, "alice")
                let bob = try await Self.register(http, "bob")
                let waiting = try await http.execute(uri: "/api/conversations/alice", method: .post, headers: bob, body: Self.body(["body": "while you were away"]))
                #expect(waiting.status == .ok)
                let frames = Frames()
                let cookie: HTTPFields = [.cookie: alice[.cookie]!]
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            try await Self.live(http, headers: cookie, into: frames)
                        } catch {
                            frames.append(#"{"type":"client-error","reason":"\#(error)"}"#)
                            throw error
                        }
                    }
                    let attached = try await frames.first { $0["type"] as? String == "attached" }
                    #expect(attached["unread"] as? Int == 1)
                    let online = try await frames.first { $0["type"] as? String == "presence" }
                    #expect(online["name"] as? String == "alice")
                    #expect(online["online"] as? Bool == true)
                    let live = try await http.execute(uri: "/api/conversations/alice", method: .post, headers: bob, body: Self.body(["body": "live <b>now</b>"]))
                    let pushed = try await frames.first { $0["type"] as? String == "message" }
                    #expect((pushed["message"] as? [String: Any])?["body"] as? String == "live <b>now</b>")
                    #expect((pushed["message"] as? [String: Any])?["id"] as? String == (try Self.decode(live)["id"] as? String))
                    // Pushed is not delivered: both wait until the page says it showed them.
                    let read = try Self.decode(try await http.execute(uri: "/api/inbox/read", method: .post, headers: alice, body: Self.body(["limit": 10])))
                    let readIDs = (read["messages"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
                    #expect((read["messages"] as? [[String: Any]])?.map { $0["body"] as? String } == ["while you were away", "live <b>now</b>"])
                    #expect(read["unread"] as? Int == 2)
                    let shown = try Self.decode(try await http.execute(uri: "/api/messages/shown", method: .post, headers: alice, body: Self.body(["ids": readIDs])))
                    #expect(shown["deleted"] as? Int == 2)
                    let after = try Self.decode(try await http.execute(uri: "/api/inbox/read", method: .post, headers: alice, body: Self.body(["limit": 10])))
                    #expect((after["messages"] as? [Any])?.isEmpty == true && after["unread"] as? Int == 0)

                    let liveID = try #require((pushed["message"] as? [String: Any])?["id"] as? String)
                    _ = try await http.execute(uri: "/api/messages/delete", method: .post, headers: bob, body: Self.body(["ids": [liveID]]))
                    let gone = try await frames.first { $0["type"] as? String == "deleted" }
                    #expect(gone["ids"] as? [String] == [liveID])
                    group.cancelAll()
                }
                // Anonymous upgrades are refused before any subscription (Hummingbird answers
                // every refused upgrade 400, whatever the handler threw).
                let anonymous = try await RawWebSocket.open(port: http.port, path: "/api/events", headers: [], within: .seconds(15)) { _ in true }
                #expect(anonymous.status.hasPrefix("HTTP/1.1 400 "), "\(anonymous)")
                // So are upgrades from another site's page, cookie or not.
                let foreign = [("Cookie", alice[.cookie]!), ("Origin", "https://evil.example")]
                let crossSite = try await RawWebSocket.open(port: http.port, path: "/api/events", headers: foreign, within: .seconds(15)) { _ in true }
                #expect(crossSite.status.hasPrefix("HTTP/1.1 400 "), "\(crossSite)")
            }
        }
    }

    /// One address holds at most its share of the live slots, whatever the sessions it uses:
    /// a second account's socket from the same address is refused in words.
    @Test func oneAddressHoldsAtMostItsLiveConnections() async throws {
        let cluster = try TestCluster(size: 1, placement: .inProcess)
        try cluster.startAll()
        defer { cluster.stopAll() }
        try await cluster.withClient { client in
            _ = try await cluster.waitForLeader(client)
            var configuration = GatewayConfiguration()
            configuration.port = 0
            configuration.limits.liveConnectionsPerAddress = 1
            let app = try WebGateway.application(client: client, configuration: configuration, logger: Logger(label: "test-web"))
            try await GatewayHTTP.serving(app) { http in
                let alice = try await Self.register(http, "alice")
                let bob = try await Self.register(http, "bob")
                let frames = Frames()
                // Open until a message comes, in a task of its own that is never awaited: every
                // wait is on frames, bounded, and leaving `serving` shuts the server down, which
                // ends the channel.
                let first = Task { try await Self.live(http, headers: [.cookie: alice[.cookie]!], into: frames, until: "message") }
                defer { first.cancel() }
                _ = try await frames.first { $0["type"] as? String == "attached" }
                // The refusal comes with the upgrade itself, often in the same TCP segment as the
                // `101`: read as a browser reads it, the stream as one piece.
                let refused = try await RawWebSocket.open(port: http.port, path: "/api/events", headers: [("Cookie", bob[.cookie]!)], within: .seconds(15)) { _ in false }
                #expect(refused.status.hasPrefix("HTTP/1.1 101"), "\(refused)")
                #expect(refused.texts.count == 1 && refused.texts[0].contains(#""type":"ended""#) && refused.texts[0].contains("your address has 1 live connections open"), "\(refused)")
                #expect(refused.closeCode == 1008, "\(refused)")
                let sent = try await http.execute(uri: "/api/conversations/alice", method: .post, headers: bob, body: Self.body(["body": "bye"]))
                #expect(sent.status.code < 300, "\(sent.status): \(String(buffer: sent.body))")
                _ = try await frames.first { $0["type"] as? String == "message" }
            }
        }
    }
}

/// Frames received on a live channel, for a test to wait on.
final class Frames: @unchecked Sendable {
    let name: String
    private let lock = NSLock()
    private var items: [[String: Any]] = []
    /// How the channel ended, for a failure to say (a channel that failed to open shows no frame).
    private var ending: String?

    func append(_ text: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return }
        lock.withLock { items.append(object) }
    }

    init(_ name: String = "the live channel") {
        self.name = name
    }

    func ended(_ how: String) {
        lock.withLock { ending = how }
    }

    /// The first frame matching `predicate`, waiting up to 15 s for it.
    func first(_ predicate: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let end = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < end {
            if let found = lock.withLock({ items.first(where: predicate) }) { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("no such frame on \(name) within 15 s; got \(lock.withLock { items }); \(lock.withLock { ending } ?? "the channel is still open")")
    }
}
