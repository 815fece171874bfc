import API
import ClusterPKI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// A client of a Chorus cluster. It finds the leader (from a follower's hint or by trying
/// each node), remembers it, and retries failed calls with exponential backoff and jitter
/// inside one deadline per operation. Writes carry a request id that stays the same across
/// retries, so a retry after a leader change never applies twice.
///
/// Create one with `withChorusClient(endpoints:)`, which runs its connections.
public final class ChorusClient: Sendable {
    public let endpoints: [String]
    let stubs: [Chorus_V1_Chat.Client<HTTP2ClientTransport.Posix>]
    let clients: [GRPCClient<HTTP2ClientTransport.Posix>]
    /// Sends go over one long-lived stream per node, and reads over another
    /// (`MultiplexedStream`).
    let sendStreams: [MultiplexedStream<Chorus_V1_SendMessageRequest, Chorus_V1_SendReply>]
    let readStreams: [MultiplexedStream<Chorus_V1_ReadRequest, Chorus_V1_ReadReply>]
    /// Names each read for its reply: one counter for every stream of this client.
    let readCalls = Atomic<UInt64>(0)
    let lanes = RequestLanes()
    /// Index into `endpoints` of the node believed to lead.
    let leader = Mutex<Int>(0)
    /// Upper bound on one operation, retries included.
    public let deadline: Duration
    let security: ClientSecurity

    init(endpoints: [String], deadline: Duration, security: ClientSecurity) throws {
        guard !endpoints.isEmpty else { throw ChorusError.invalidInput("no endpoints given") }
        self.endpoints = endpoints
        self.deadline = deadline
        self.security = security
        var clients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
        for endpoint in endpoints {
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
                throw ChorusError.invalidInput("endpoint '\(endpoint)' is not host:port")
            }
            let host = String(endpoint[..<colon])
            let transport = try HTTP2ClientTransport.Posix(
                target: ClientSecurity.target(host: host, port: port),
                transportSecurity: security.transportSecurity,
                config: .defaults {
                    $0.backoff = .init(initial: .milliseconds(50), max: .milliseconds(500), multiplier: 1.6, jitter: 0.2)
                    // A subscription to a node that vanished without closing its connection
                    // ends within seconds, and the client attaches elsewhere.
                    $0.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: true)
                }
            )
            clients.append(GRPCClient(transport: transport))
        }
        self.clients = clients
        stubs = clients.map { Chorus_V1_Chat.Client(wrapping: $0) }
        sendStreams = endpoints.map { MultiplexedStream(endpoint: $0, kind: "send") }
        readStreams = endpoints.map { MultiplexedStream(endpoint: $0, kind: "read") }
    }

    func runConnections() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for client in clients {
                group.addTask { try await client.runConnections() }
            }
            for (stream, stub) in zip(sendStreams, stubs) {
                group.addTask {
                    await stream.run { write, read in try await stub.sendStream(requestProducer: write, onResponse: { try await read($0.messages) }) }
                }
            }
            for (stream, stub) in zip(readStreams, stubs) {
                group.addTask {
                    await stream.run { write, read in try await stub.readStream(requestProducer: write, onResponse: { try await read($0.messages) }) }
                }
            }
        }
    }

    func close() {
        for stream in sendStreams { stream.close() }
        for stream in readStreams { stream.close() }
        for client in clients { client.beginGracefulShutdown() }
    }

    // MARK: Calls with leader discovery and retries

    /// Runs `body` against the leader, following hints and retrying while the cluster is
    /// unavailable, until `deadline`.
    func withLeader<R: Sendable>(_ body: (Chorus_V1_Chat.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
        try await withLeader(node: { try await body(stubs[$0]) })
    }

    /// `withLeader` for a body that takes the index of the node it should use. For a write
    /// (`write: true`), once an attempt may have reached a leader and been proposed (its
    /// answer lost, or a leader change or timeout while it waited), the call never reports a
    /// failure that says it was not done: it retries with the same request id until an answer
    /// comes, or throws `outcomeUnknown`.
    func withLeader<R: Sendable>(write: Bool = false, node body: (Int) async throws -> R) async throws -> R {
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + deadline
        var attempt = 0
        var lastError = "no node answered"
        var mayHaveApplied = false
        /// A node answered that it does not know the call: it runs an older release.
        var olderRelease = false
        func unknown(_ why: String) -> ChorusError {
            .outcomeUnknown("the outcome is unknown: an attempt reached the cluster and its answer was lost, and \(why); it may have been applied (retrying with the same request id is safe)")
        }
        /// The caller stopped waiting: a write that may have been applied says so.
        func stopped() -> any Error {
            write && mayHaveApplied ? unknown("the caller stopped waiting") : CancellationError()
        }
        func sleep(_ duration: Duration) async throws {
            do { try await Task.sleep(for: duration) } catch { throw stopped() }
        }
        while true {
            let target = leader.withLock { $0 }
            do {
                let remaining = end - clock.now
                guard remaining > .zero else { break }
                return try await body(target)
            } catch let error as RPCError where error.code == .resourceExhausted {
                // A node (or this client's own stream) over a limit says when to come back;
                // wait that long if the deadline allows (a retry of a write keeps its request
                // id: applied at most once).
                guard let wait = Self.retryAfter(error.metadata), clock.now + wait < end else {
                    if mayHaveApplied { throw unknown("the cluster stayed busy: \(error.message)") }
                    throw ChorusError(error)
                }
                lastError = error.message
                try await sleep(wait)
                continue
            } catch let error as RPCError where error.code == .unimplemented {
                // A node of an older release (a rolling upgrade is under way) does not know
                // the call and did nothing with it: ask another; the leader, once it runs
                // this release, answers, and refuses what the cluster version lacks.
                if Task.isCancelled { throw stopped() }
                olderRelease = true
                lastError = "the node at \(endpoints[target]) runs an older release, which does not know this call"
                follow(hint: [:], after: target)
            } catch let error as RPCError {
                if Task.isCancelled { throw stopped() }
                guard error.code == .unavailable || error.code == .deadlineExceeded || error.code == .cancelled else {
                    // After an attempt that may have been applied, a failure that is not the
                    // cluster's verdict on the request says nothing of its outcome.
                    if mayHaveApplied && (error.code == .internalError || error.code == .unknown) { throw unknown(error.message) }
                    throw ChorusError(error)
                }
                if write && !Self.wasNotProposed(error) { mayHaveApplied = true }
                lastError = error.message
                follow(hint: error.metadata, after: target)
            } catch let error as ChorusError {
                throw error
            } catch is CancellationError {
                throw stopped()
            } catch {
                if write { mayHaveApplied = true }
                lastError = "\(error)"
                follow(hint: [:], after: target)
            }
            attempt += 1
            let base = min(Self.pauseCap(after: clock.now - start), 10.0 * pow(1.7, Double(attempt)))
            let pause = Duration.milliseconds(Int(Double.random(in: base / 2...base)))
            guard clock.now + pause < end else { break }
            try await sleep(pause)
        }
        if mayHaveApplied { throw unknown("no leader answered within \(deadline): \(lastError)") }
        if olderRelease {
            throw ChorusError.failedPrecondition("no node that knows this call answered within \(deadline) (\(lastError)): the cluster is being upgraded; every node must run this release first")
        }
        // A plaintext client of a TLS cluster sees only failed connections: say what may be wrong.
        let hint = security == .plaintext ? " (if the cluster runs TLS, give its CA: --ca or CHORUS_CA)" : ""
        throw ChorusError.clusterUnavailable("no leader reachable within \(deadline): \(lastError)\(hint)")
    }

    /// Whether a failed attempt of a write certainly was not proposed: a node that does not
    /// lead says so. Anything else (a lost connection, a leader change or timeout while it
    /// waited, no reply in time) may have reached a leader.
    static func wasNotProposed(_ error: RPCError) -> Bool {
        guard error.code == .unavailable else { return false }
        if error.metadata[stringValues: MetadataKeys.notProposed].contains(where: { _ in true }) { return true }
        // grpc-swift refuses a call before it opens a stream when the connection is down
        // (these are its words): nothing was sent.
        return Self.beforeAnyStream.contains { error.message.hasPrefix($0) }
    }

    /// grpc-swift's words for a call that failed before it had a stream. If they change, such
    /// failures count as possibly applied: safe, only less precise.
    static let beforeAnyStream = [
        "Channel is in a transient failure state", "Channel is shutting down", "Channel isn't ready", "channel is shutdown",
        "channel is closed", "Could not establish a connection", "subchannel isn't ready", "subchannel is unavailable",
        "Subchannel shutdown", "Failed to resolve server name",
        "The server accepted the TCP connection but closed the connection before completing the HTTP/2 connection preface",
    ]

    /// When a node says to retry, bounded to an hour: the value is a stranger's number, and
    /// an instant plus an unbounded duration would trap.
    static func retryAfter(_ metadata: Metadata) -> Duration? {
        metadata[stringValues: MetadataKeys.retryAfterMs].first { _ in true }.flatMap { Int($0) }.map { .milliseconds(min(3_600_000, max(1, $0))) }
    }

    /// The longest pause between attempts, in milliseconds. An election ends within a few
    /// hundred milliseconds, so for the first two seconds the client keeps polling often and
    /// finds the new leader soon after it is elected; later it backs off further, so a
    /// cluster that is down for longer is not hammered.
    static func pauseCap(after elapsed: Duration) -> Double {
        elapsed < .seconds(2) ? 50 : 500
    }

    /// Moves to the leader a follower named, or to the next endpoint.
    func follow(hint: Metadata, after failed: Int) {
        let named = hint[stringValues: MetadataKeys.leader].first { _ in true }
        leader.withLock { current in
            guard current == failed else { return }
            if let named, let address = named.split(separator: "=", maxSplits: 1).last,
               let index = endpoints.firstIndex(of: String(address)), index != failed
            {
                current = index
            } else {
                current = (failed + 1) % endpoints.count
            }
        }
    }

    /// A write: one request id, kept across retries.
    func write<R: Sendable>(_ body: (Chorus_V1_RequestID, Chorus_V1_Chat.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
        try await write(node: { id, node in try await body(id, stubs[node]) })
    }

    /// `write` for a body that takes the index of the node it should use.
    func write<R: Sendable>(node body: (Chorus_V1_RequestID, Int) async throws -> R) async throws -> R {
        let lane = lanes.borrow()
        defer { lanes.giveBack(lane) }
        // A lane has one request in flight: everything below it is answered.
        let id = Chorus_V1_RequestID.with {
            $0.clientID = lane.clientID
            $0.sequence = lane.sequence
            $0.firstOutstanding = lane.sequence
        }
        return try await withLeader(write: true, node: { node in try await body(id, node) })
    }

    static let callOptions = CallOptions.defaults.withTimeout(.seconds(6))
}

extension CallOptions {
    func withTimeout(_ timeout: Duration) -> CallOptions {
        var copy = self
        copy.timeout = timeout
        return copy
    }
}

/// Runs `body` with a client of the cluster at `endpoints` (host:port each), then closes it.
public func withChorusClient<R: Sendable>(
    endpoints: [String], deadline: Duration = .seconds(10), security: ClientSecurity = .plaintext,
    _ body: (ChorusClient) async throws -> R
) async throws -> R {
    let client = try ChorusClient(endpoints: endpoints, deadline: deadline, security: security)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.runConnections() }
        defer {
            client.close()
        }
        let result = try await body(client)
        client.close()
        try await group.waitForAll()
        return result
    }
}
