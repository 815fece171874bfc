import GRPCCore
import InlineGRPC
import NIOCore
import NIOPosix
import Synchronization

/// Messages as raw bytes: the tests see exactly what crossed the wire.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
}

/// `test.Echo`'s methods, one of each kind of call, and what the tests make their handlers do.
enum Echo {
    static let unary = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Unary")
    /// Answers the number of messages and of bytes it read, as two 8-byte counts.
    static let count = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Count")
    /// Answers `n` messages of the request's first byte, where `n` is that byte.
    static let expand = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Expand")
    static let bidi = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Bidi")
    /// Reads nothing until `gate` opens, then echoes like `bidi`.
    static let late = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Late")
    /// Fails with NOT_FOUND, a message that needs percent-encoding, and trailing metadata.
    static let fail = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Fail")
    /// Waits until its call is cancelled, then reports it.
    static let wait = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Wait")
}

/// Signals between a test and its handlers.
final class Signals: Sendable {
    let gate = AsyncLatch()
    let cancelled = AsyncLatch()
    let started = AsyncLatch()
    /// What the transport answered itself for unary handlers (`unaryRefused`).
    let refused = Mutex<[Status.Code]>([])
}

/// Opens once; every waiter, before or after, goes on.
final class AsyncLatch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }
}

struct EchoService: RegistrableRPCService {
    let signals: Signals

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let coder = RawBytes()
        let signals = self.signals
        router.registerHandler(forMethod: Echo.unary, deserializer: coder, serializer: coder) { request, _ in
            StreamingServerResponse(metadata: Metadata(request.metadata.filter { $0.key.hasPrefix("echo-") })) { writer in
                for try await message in request.messages { try await writer.write(message) }
                return [:]
            }
        }
        router.registerHandler(forMethod: Echo.count, deserializer: coder, serializer: coder) { request, _ in
            StreamingServerResponse { writer in
                var (messages, bytes) = (UInt64(0), UInt64(0))
                for try await message in request.messages {
                    messages += 1
                    bytes += UInt64(message.count)
                }
                try await writer.write(Self.bytes(messages) + Self.bytes(bytes))
                return [:]
            }
        }
        router.registerHandler(forMethod: Echo.expand, deserializer: coder, serializer: coder) { request, _ in
            StreamingServerResponse { writer in
                for try await message in request.messages {
                    for _ in 0..<Int(message.first ?? 0) { try await writer.write(message) }
                }
                return [:]
            }
        }
        for method in [Echo.bidi, Echo.late] {
            router.registerHandler(forMethod: method, deserializer: coder, serializer: coder) { request, _ in
                StreamingServerResponse { writer in
                    if method == Echo.late {
                        signals.started.open()
                        await signals.gate.wait()
                    }
                    for try await message in request.messages { try await writer.write(message) }
                    return [:]
                }
            }
        }
        router.registerHandler(forMethod: Echo.fail, deserializer: coder, serializer: coder) { _, _ in
            StreamingServerResponse(error: RPCError(code: .notFound, message: "no such thing: ‘échec’ at 100%\nsecond line",
                                                    metadata: ["reason": "test", "detail-bin": .binary([0, 1, 2, 255])]))
        }
        router.registerHandler(forMethod: Echo.wait, deserializer: coder, serializer: coder) { _, context in
            StreamingServerResponse { _ in
                signals.started.open()
                try? await context.cancellation.cancelled
                signals.cancelled.open()
                return [:]
            }
        }
    }

    static func bytes(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
}

/// A GRPCServer on the inline transport on a free loopback port, for the length of `body`.
func withEchoServer<R: Sendable>(signals: Signals = Signals(), configure: (inout InlineServerTransport.Configuration) -> Void = { _ in },
                                 _ body: (Int, GRPCServer<InlineServerTransport>) async throws -> R) async throws -> R {
    var configuration = InlineServerTransport.Configuration(host: "127.0.0.1", port: 0, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
    configuration.requestLimit = { _ in RequestLimit(maxMessageBytes: 256 << 10, resetAbove: 1 << 20) }
    configure(&configuration)
    let transport = InlineServerTransport(configuration)
    let server = GRPCServer(transport: transport, services: [EchoService(signals: signals)])
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.serve() }
        let port = try await transport.listeningAddress.port!
        do {
            let result = try await body(port, server)
            server.beginGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}
