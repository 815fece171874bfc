import GRPCCore
import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization

/// A gRPC server transport on swift-nio-http2 that serves each stream inline, in its
/// connection's pipeline: no child channel, no async channel and no task hop per call, only the
/// handler's own task. `GRPCServer` runs on it as on any transport (services, interceptors,
/// deadlines and statuses are GRPCCore's); what differs is what a call costs the node.
///
/// The wire protocol is gRPC over HTTP/2 as grpc-go, grpcio and grpc-swift speak it: identity
/// encoding only (a compressed request is refused with UNIMPLEMENTED and the accepted
/// encoding), trailers-only answers for calls refused before a message, and RST_STREAM
/// NO_ERROR after a status that ends a call whose client is still sending.
public final class InlineServerTransport: ServerTransport {
    public typealias Bytes = InlineBytes

    /// A unary method answered without GRPCCore's executor: the request's bytes in, the
    /// response's bytes out, or a thrown error that becomes the status (`RPCError` and
    /// `RPCErrorConvertible` as GRPCCore maps them). The call is one task, started when the
    /// request has ended, that answers with three frames; no async sequence, writer,
    /// interceptor or metadata is made for it. Whatever such a handler wants around the call
    /// (metrics, logging) it does itself.
    public typealias UnaryHandler = @Sendable (InlineBytes, ServerContext) async throws -> InlineBytes

    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var eventLoopGroup: any EventLoopGroup
        /// Where call handlers run: an executor on `eventLoopGroup`'s loops keeps a call on the
        /// thread that read it. Nil runs them on the global pool.
        public var executor: (any TaskExecutor)?
        /// SETTINGS_MAX_CONCURRENT_STREAMS: a client's calls in flight on one connection.
        public var maxConcurrentStreams: Int = 100
        public var maxFrameSize: Int = 1 << 14
        /// A stream's flow-control window, and the request bytes a handler may leave unread.
        public var streamWindow: Int = 65_535
        /// The connection's window, given back as DATA arrives.
        public var connectionWindow: Int = 1 << 20
        public var maxHeaderListSize: Int = 16 << 10
        public var keepaliveInterval: TimeAmount = .seconds(10)
        public var keepaliveTimeout: TimeAmount = .seconds(5)
        /// The request limit of each method.
        public var requestLimit: @Sendable (MethodDescriptor) -> RequestLimit = { _ in RequestLimit(maxMessageBytes: 4 << 20, resetAbove: 16 << 20) }
        /// Unary methods served by `UnaryHandler`s, by path ("/package.Service/Method"); every
        /// other method goes to the server's router.
        public var unaryHandlers: [String: UnaryHandler] = [:]
        /// Told of each call to a `unaryHandlers` method that ended before its handler ran:
        /// answered by the transport (a request over the limit, no message or more than one)
        /// or cancelled by the client, with the status and the time since the call opened, so
        /// the handlers' metrics count every call once.
        public var unaryRefused: @Sendable (MethodDescriptor, Status, Duration) -> Void = { _, _, _ in }
        /// Runs on each accepted connection once its HTTP/2 handler is in the pipeline, to add
        /// handlers around it (TLS at `.first`, byte-level handlers before it).
        public var configureConnection: @Sendable (any Channel) throws -> Void = { _ in }

        public init(host: String, port: Int, eventLoopGroup: any EventLoopGroup) {
            self.host = host
            self.port = port
            self.eventLoopGroup = eventLoopGroup
        }
    }

    /// What the connections of a listening transport share.
    final class Running: Sendable {
        let configuration: Configuration
        let methods: [String: MethodDescriptor]
        let handler: @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
        let connections: Connections
        let calls = Calls()

        init(configuration: Configuration, methods: [String: MethodDescriptor], connections: Connections,
             handler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void) {
            self.configuration = configuration
            self.methods = methods
            self.handler = handler
            self.connections = connections
        }
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let connections = Connections()
    private let address: EventLoopPromise<SocketAddress>

    private struct State {
        var methods: [String: MethodDescriptor] = [:]
        var server: (any Channel)?
        var shuttingDown = false
    }

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        address = configuration.eventLoopGroup.next().makePromise()
    }

    /// The bound address, once listening (port 0 picks one).
    public var listeningAddress: SocketAddress {
        get async throws { try await address.futureResult.get() }
    }

    public func configure(context: GRPCServerContext) {
        let methods = Dictionary(context.methods.map { ("/\($0.fullyQualifiedMethod)", $0) }, uniquingKeysWith: { first, _ in first })
        state.withLock { $0.methods = methods }
    }

    public func listen(streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void) async throws {
        let running = Running(configuration: configuration, methods: state.withLock { $0.methods }, connections: connections, handler: streamHandler)
        let settings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: configuration.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxFrameSize, value: configuration.maxFrameSize),
            HTTP2Setting(parameter: .initialWindowSize, value: configuration.streamWindow),
            HTTP2Setting(parameter: .maxHeaderListSize, value: configuration.maxHeaderListSize),
        ]
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: configuration.eventLoopGroup)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, initialSettings: settings))
                        try pipeline.addHandler(InlineConnectionHandler(server: running))
                        try running.configuration.configureConnection(channel)
                    }
                }
                .bind(host: configuration.host, port: configuration.port).get()
        } catch {
            address.fail(error)
            throw error
        }
        let stopAtOnce = state.withLock { state in
            state.server = server
            return state.shuttingDown
        }
        if let local = server.localAddress { address.succeed(local) }
        if stopAtOnce { beginGracefulShutdown() }
        await withTaskCancellationHandler {
            try? await server.closeFuture.get()
            await connections.waitUntilAllClosed()
            await running.calls.waitUntilNone()
        } onCancel: {
            server.close(promise: nil)
            connections.closeAll()
            running.calls.cancelAll()
        }
    }

    /// Stops accepting connections and sends each open one a GOAWAY: its calls finish, then it
    /// closes, and `listen` returns once all have.
    public func beginGracefulShutdown() {
        let server = state.withLock { state in
            state.shuttingDown = true
            return state.server
        }
        server?.close(promise: nil)
        connections.drainAll()
    }
}

/// The open connections of a transport, for draining and closing them all.
final class Connections: Sendable {
    private let state = Mutex(State())

    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var draining = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    func add(_ channel: any Channel) {
        let drain = state.withLock { state in
            state.open[ObjectIdentifier(channel)] = channel
            return state.draining
        }
        if drain { channel.triggerUserOutboundEvent(InlineConnectionHandler.Drain(), promise: nil) }
    }

    func remove(_ channel: any Channel) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open[ObjectIdentifier(channel)] = nil
            guard state.open.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func drainAll() {
        let open = state.withLock { state in
            state.draining = true
            return Array(state.open.values)
        }
        for channel in open { channel.triggerUserOutboundEvent(InlineConnectionHandler.Drain(), promise: nil) }
    }

    func closeAll() {
        let open = state.withLock { state in
            state.draining = true
            return Array(state.open.values)
        }
        for channel in open { channel.close(promise: nil) }
    }

    func waitUntilAllClosed() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.open.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// The calls whose handlers are still running, so `listen` returns after the last and can
/// cancel them all when it is cancelled itself (the handlers are tasks of their own).
final class Calls: Sendable {
    private let state = Mutex(State())

    private struct State {
        var next = 0
        var running: [Int: Task<Void, Never>?] = [:]
        var cancelled = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// A call begins; its task follows with `attach`.
    func enter() -> Int {
        state.withLock { state in
            state.next += 1
            state.running[state.next] = .some(nil)
            return state.next
        }
    }

    func attach(_ id: Int, _ task: Task<Void, Never>) {
        let cancel = state.withLock { state -> Bool in
            guard state.running[id] != nil else { return false }
            state.running[id] = task
            return state.cancelled
        }
        if cancel { task.cancel() }
    }

    func leave(_ id: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running[id] = nil
            guard state.running.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func cancelAll() {
        let tasks = state.withLock { state in
            state.cancelled = true
            return state.running.values.compactMap { $0 }
        }
        for task in tasks { task.cancel() }
    }

    func waitUntilNone() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.running.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
