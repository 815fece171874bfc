import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The gateway's tests' way to it: the application served on a free loopback port for as long
/// as a test runs, and plain HTTP/1.1 requests and WebSocket channels to it over real sockets,
/// one connection each, as a browser's would be.
struct GatewayHTTP: Sendable {
    struct Response: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let port: Int

    /// Serves `app` on `127.0.0.1` and a port the system chooses while `body` runs, then shuts
    /// it down gracefully, as `chorus-web` does on SIGTERM.
    static func serving<App: ApplicationProtocol, Value: Sendable>(_ app: App, _ body: (GatewayHTTP) async throws -> Value) async throws -> Value {
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let served = OnLoopback(base: app, announce: announce)
        let services = ServiceGroup(configuration: .init(services: [served], logger: app.logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // A server that never comes up ends the wait for its port, and says why below.
                defer { announce.finish() }
                try await services.run()
            }
            var announced = ports.makeAsyncIterator()
            guard let port = await announced.next() else {
                try await group.next()
                throw Failure(description: "the gateway stopped before it listened")
            }
            let value: Value
            do {
                value = try await body(GatewayHTTP(port: port))
            } catch {
                await services.triggerGracefulShutdown()
                throw error
            }
            await services.triggerGracefulShutdown()
            // A server that failed while the test ran says so here, not as a refused connection.
            try await group.waitForAll()
            return value
        }
    }

    /// Sends one request and reads the whole answer; a connection that ends without one, or
    /// no answer within `within`, is an error.
    func execute(uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil, within: Duration = .seconds(20)) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let port = self.port
        return try await Self.bounded(within, "\(method) \(uri)", close: channel.channel) {
            try await channel.executeThenClose { inbound, outbound in
                var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method.rawValue), uri: uri)
                head.headers.add(name: "Host", value: "localhost:\(port)")
                for field in headers { head.headers.add(name: field.name.rawName, value: field.value) }
                head.headers.replaceOrAdd(name: "Content-Length", value: "\(body?.readableBytes ?? 0)")
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                try await outbound.write(.head(head))
                if let body { try await outbound.write(.body(.byteBuffer(body))) }
                try await outbound.write(.end(nil))
                var response: Response?
                for try await part in inbound {
                    switch part {
                    case .head(let head):
                        var fields = HTTPFields()
                        for (name, value) in head.headers {
                            guard let name = HTTPField.Name(name) else { throw Failure(description: "the answer has a header named '\(name)'") }
                            fields.append(HTTPField(name: name, value: value))
                        }
                        response = Response(status: HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase), headers: fields, body: ByteBuffer())
                    case .body(var chunk):
                        response?.body.writeBuffer(&chunk)
                    case .end:
                        if let response { return response }
                    }
                }
                throw Failure(description: "the connection to \(uri) closed before a whole answer")
            }
        }
    }

    /// Opens a WebSocket on `path` and hands `onText` each text frame until it returns true,
    /// the server closes, or the connection ends; an upgrade the server refuses is an error.
    @discardableResult
    func ws(_ path: String, headers: HTTPFields = [:], onText: @escaping @Sendable (String) -> Bool) async throws -> RawWebSocket.Answer {
        let answer = try await RawWebSocket.open(port: port, path: path, headers: headers.map { ($0.name.rawName, $0.value) }, within: nil, onText: onText)
        guard answer.status.contains(" 101 ") else {
            throw Failure(description: "the upgrade to \(path) was refused: \(answer.status)")
        }
        return answer
    }

    /// `work`'s result, or a failure naming `what` once `limit` passes (then `close` is closed,
    /// which ends the work).
    static func bounded<Value: Sendable>(_ limit: Duration, _ what: String, close: any Channel, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let value = try await group.next() ?? nil else {
                close.close(promise: nil)
                throw Failure(description: "no answer to \(what) within \(limit)")
            }
            return value
        }
    }
}

/// An application as its tests serve it: on `127.0.0.1` and a free port, which it announces
/// once it listens.
private struct OnLoopback<Base: ApplicationProtocol>: ApplicationProtocol {
    typealias Responder = Base.Responder

    let base: Base
    let announce: AsyncStream<Int>.Continuation

    var responder: Responder {
        get async throws { try await base.responder }
    }

    var server: HTTPServerBuilder { base.server }
    var eventLoopGroup: any EventLoopGroup { base.eventLoopGroup }
    var configuration: ApplicationConfiguration { base.configuration.with(address: .hostname("127.0.0.1", port: 0)) }
    var logger: Logger { base.logger }
    var services: [any Service] { base.services }
    var processesRunBeforeServerStart: [@Sendable () async throws -> Void] { base.processesRunBeforeServerStart }

    @Sendable func onServerRunning(_ channel: any Channel) async {
        await base.onServerRunning(channel)
        if let port = channel.localAddress?.port { announce.yield(port) } else { announce.finish() }
    }
}
