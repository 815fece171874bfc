import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import ToolSupport

/// A minimal etcd v3 client: Put, Range and Status over the public gRPC API, with one
/// connection per endpoint. etcd followers forward writes to their leader; when the node a
/// call went to fails, the next call goes to the next endpoint.
final class EtcdClient: Sendable {
    let endpoints: [String]
    private let clients: [GRPCClient<HTTP2ClientTransport.Posix>]
    private let kv: [Etcdserverpb_KV.Client<HTTP2ClientTransport.Posix>]
    private let maintenance: [Etcdserverpb_Maintenance.Client<HTTP2ClientTransport.Posix>]
    private let preferred = Atomic<Int>(0)
    let callTimeout: Duration

    init(endpoints: [String], callTimeout: Duration = .seconds(5)) throws {
        self.endpoints = endpoints
        self.callTimeout = callTimeout
        clients = try endpoints.map { endpoint in
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
                throw ToolError("endpoint '\(endpoint)' is not host:port")
            }
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: String(endpoint[..<colon]), port: port), transportSecurity: .plaintext,
                config: .defaults { $0.backoff = .init(initial: .milliseconds(20), max: .milliseconds(200), multiplier: 1.6, jitter: 0.2) }
            )
            return GRPCClient(transport: transport)
        }
        kv = clients.map { Etcdserverpb_KV.Client(wrapping: $0) }
        maintenance = clients.map { Etcdserverpb_Maintenance.Client(wrapping: $0) }
    }

    /// Runs the connections for the duration of `body`.
    static func with<R: Sendable>(endpoints: [String], callTimeout: Duration = .seconds(5), _ body: @Sendable (EtcdClient) async throws -> R) async throws -> R {
        let client = try EtcdClient(endpoints: endpoints, callTimeout: callTimeout)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for connection in client.clients {
                group.addTask { try await connection.runConnections() }
            }
            defer {
                for connection in client.clients { connection.beginGracefulShutdown() }
            }
            let result = try await body(client)
            for connection in client.clients { connection.beginGracefulShutdown() }
            try await group.waitForAll()
            return result
        }
    }

    /// Sends further calls to `endpoint` first.
    func prefer(_ endpoint: String) {
        if let index = endpoints.firstIndex(of: endpoint) { preferred.store(index, ordering: .relaxed) }
    }

    private var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = callTimeout
        options.waitForReady = true
        return options
    }

    /// A call on the preferred endpoint; on failure the next one becomes preferred.
    ///
    /// etcd's Go server resets every unary stream whose client has not half-closed yet when
    /// it answers, and grpc-swift's client closes a connection after 200 resets in 10 s (a
    /// denial-of-service guard), failing the calls on it. Go's own etcd client never sees
    /// those resets, so a call that failed that way is retried, on a fresh connection,
    /// within the measured latency.
    private func call<R: Sendable>(_ body: (Int) async throws -> R) async throws -> R {
        var attempt = 0
        while true {
            let index = preferred.load(ordering: .relaxed)
            do {
                return try await body(index)
            } catch let error as RPCError where error.code == .unavailable && Self.isConnectionReplaced(error) && attempt < 5 {
                // The reconnect takes a moment; the call waits for it.
                attempt += 1
                try await Task.sleep(for: .milliseconds(attempt))
            } catch {
                _ = preferred.compareExchange(expected: index, desired: (index + 1) % endpoints.count, ordering: .relaxed)
                throw error
            }
        }
    }

    static func isConnectionReplaced(_ error: RPCError) -> Bool {
        ["Stream unexpectedly closed", "Channel isn't ready", "subchannel isn't ready"].contains { error.message.hasPrefix($0) }
    }

    func put(key: [UInt8], value: [UInt8]) async throws {
        let request = Etcdserverpb_PutRequest.with { $0.key = Data(key); $0.value = Data(value) }
        _ = try await call { try await kv[$0].put(request, options: options) }
    }

    /// A linearizable read of one key.
    func get(key: [UInt8]) async throws -> [UInt8]? {
        let request = Etcdserverpb_RangeRequest.with { $0.key = Data(key) }
        let response = try await call { try await kv[$0].range(request, options: options) }
        return response.kvs.first.map { Array($0.value) }
    }

    /// Every endpoint's answer to Status (nil where it did not answer).
    func statuses() async -> [(endpoint: String, status: Etcdserverpb_StatusResponse?)] {
        var options = CallOptions.defaults
        options.timeout = .milliseconds(500)
        var result: [(String, Etcdserverpb_StatusResponse?)] = []
        for (n, client) in maintenance.enumerated() {
            result.append((endpoints[n], try? await client.status(.init(), options: options)))
        }
        return result
    }
}
