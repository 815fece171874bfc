import GRPCCore
import GRPCNIOTransportHTTP2
import InlineGRPC
import NIOCore
import NIOHPACK
import NIOHTTP2
import Testing

/// The inline transport under GRPCServer, driven by grpc-swift-2's client (every kind of call,
/// statuses, metadata) and by a raw HTTP/2 connection (limits, flow control, draining).
@Suite(.timeLimit(.minutes(1))) struct InlineServerTransportTests {
    static func withClient<R: Sendable>(_ port: Int, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { try await body($0) }
    }

    @Test func eachKindOfCallIsServedWithItsMessagesInOrder() async throws {
        try await withEchoServer { port, _ in
            try await Self.withClient(port) { client in
                let coder = RawBytes()
                // Unary, with request metadata echoed back as response metadata.
                let unary = try await client.unary(request: ClientRequest(message: [1, 2, 3], metadata: ["echo-note": "kept", "other": "dropped"]),
                                                   descriptor: Echo.unary, serializer: coder, deserializer: coder, options: .defaults) { response in
                    (try response.message, response.metadata)
                }
                #expect(unary.0 == [1, 2, 3])
                #expect(Array(unary.1["echo-note"]) == [.string("kept")])
                #expect(unary.1["other"].first(where: { _ in true }) == nil)

                // Client streaming: 300 messages of 1,000 bytes, more than a stream's window.
                let counted = try await client.clientStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in
                        for n in 0..<300 { try await writer.write([UInt8](repeating: UInt8(n % 256), count: 1_000)) }
                    }, descriptor: Echo.count, serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                #expect(counted == EchoService.bytes(300) + EchoService.bytes(300_000))

                // Server streaming.
                let expanded = try await client.serverStreaming(request: ClientRequest(message: [7, 9]), descriptor: Echo.expand, serializer: coder,
                                                                deserializer: coder, options: .defaults) { response in
                    try await response.messages.reduce(into: [[UInt8]]()) { $0.append($1) }
                }
                #expect(expanded == Array(repeating: [7, 9], count: 7))

                // Bidirectional, with messages larger than a frame (they span several DATA frames).
                let sent = (0..<40).map { n in [UInt8](repeating: UInt8(n), count: 100_000 + n) }
                let echoed = try await client.bidirectionalStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in
                        for message in sent { try await writer.write(message) }
                    }, descriptor: Echo.bidi, serializer: coder, deserializer: coder, options: .defaults) { response in
                    try await response.messages.reduce(into: [[UInt8]]()) { $0.append($1) }
                }
                #expect(echoed == sent)
            }
        }
    }

    @Test func aFailedCallCarriesItsCodeMessageAndTrailingMetadata() async throws {
        try await withEchoServer { port, _ in
            try await Self.withClient(port) { client in
                let coder = RawBytes()
                do {
                    _ = try await client.unary(request: ClientRequest(message: []), descriptor: Echo.fail, serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                    Issue.record("the call succeeded")
                } catch let error as RPCError {
                    #expect(error.code == .notFound)
                    #expect(error.message == "no such thing: ‘échec’ at 100%\nsecond line")
                    #expect(Array(error.metadata["reason"]) == [.string("test")])
                    #expect(Array(error.metadata["detail-bin"]) == [.binary([0, 1, 2, 255])])
                }
                do {
                    _ = try await client.unary(request: ClientRequest(message: []), descriptor: MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Nothing"),
                                               serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                    Issue.record("an unknown method answered")
                } catch let error as RPCError {
                    #expect(error.code == .unimplemented)
                }
            }
        }
    }

    /// Unary handlers the transport runs itself, without GRPCCore's executor.
    static func fastRoutes(_ signals: Signals) -> (inout InlineServerTransport.Configuration) -> Void {
        { configuration in
            configuration.unaryHandlers["/test.Fast/Echo"] = { bytes, _ in
                var reversed = InlineBytes(repeating: 0, count: bytes.count)
                let input = bytes.withUnsafeBytes { Array($0) }
                reversed.withUnsafeMutableBytes { for (i, byte) in input.reversed().enumerated() { $0[i] = byte } }
                return reversed
            }
            configuration.unaryHandlers["/test.Fast/Fail"] = { _, _ in
                throw RPCError(code: .failedPrecondition, message: "not now: ‘busy’", metadata: ["retry-after": "1"])
            }
            configuration.unaryHandlers["/test.Fast/Wait"] = { _, context in
                signals.started.open()
                try? await context.cancellation.cancelled
                signals.cancelled.open()
                return InlineBytes([])
            }
            configuration.unaryRefused = { _, status, _ in signals.refused.withLock { $0.append(status.code) } }
        }
    }

    @Test func aUnaryHandlerAnswersWithoutTheRouterAndItsErrorsBecomeStatuses() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals, configure: Self.fastRoutes(signals)) { port, _ in
            try await Self.withClient(port) { client in
                let coder = RawBytes()
                let echoed = try await client.unary(request: ClientRequest(message: [1, 2, 3, 4]), descriptor: MethodDescriptor(fullyQualifiedService: "test.Fast", method: "Echo"),
                                                    serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                #expect(echoed == [4, 3, 2, 1])
                do {
                    _ = try await client.unary(request: ClientRequest(message: []), descriptor: MethodDescriptor(fullyQualifiedService: "test.Fast", method: "Fail"),
                                               serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                    Issue.record("the call succeeded")
                } catch let error as RPCError {
                    #expect(error.code == .failedPrecondition)
                    #expect(error.message == "not now: ‘busy’")
                    #expect(Array(error.metadata["retry-after"]) == [.string("1")])
                }
                // Over the limit: refused by the transport, which says so to the routes' owner.
                do {
                    _ = try await client.unary(request: ClientRequest(message: [UInt8](repeating: 1, count: 300 << 10)), descriptor: MethodDescriptor(fullyQualifiedService: "test.Fast", method: "Echo"),
                                               serializer: coder, deserializer: coder, options: .defaults) { try $0.message }
                    Issue.record("an oversized call succeeded")
                } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted)
                    #expect(error.message == "a request of 307200 bytes is over this node's limit of 262144 bytes")
                }
                #expect(signals.refused.withLock { $0 } == [.resourceExhausted])
            }
            // Two messages on a unary call, and a deadline that cancels one.
            let raw = try await RawHTTP2Client.connect(port: port)
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Fast/Echo")))),
                               HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 1, body: [1]))))),
                               HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 1, body: [2])), endStream: true))))
            let frames = try await raw.frames { frame in if case let .headers(headers) = frame.payload, headers.endStream { true } else { false } }
            if case let .headers(trailers) = frames.last?.payload { #expect(trailers.headers.first(name: "grpc-status") == "13") }
            var timed = RawHTTP2Client.requestHeaders("/test.Fast/Wait")
            timed.add(name: "grpc-timeout", value: "20m")
            try await raw.send(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: timed))),
                               HTTP2Frame(streamID: 3, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 0, body: [])), endStream: true))))
            await signals.cancelled.wait()
            // A call the client resets before its request ends: no handler ran, and the
            // routes' owner hears of it once, as cancelled.
            try await raw.send(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Fast/Echo")))),
                               HTTP2Frame(streamID: 5, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 4, body: [1, 2]))))),
                               HTTP2Frame(streamID: 5, payload: .rstStream(.cancel)))
            _ = try await raw.settle()
            await raw.close()
            #expect(signals.refused.withLock { $0 } == [.resourceExhausted, .internalError, .cancelled])
        }
    }

    @Test func aHandlerThatReadsLateStillGetsTheWholeRequest() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, _ in
            try await Self.withClient(port) { client in
                let coder = RawBytes()
                // 1 MiB, held back by flow control until the handler reads: the window the
                // connection withheld must come back as it does.
                async let count = client.bidirectionalStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in
                        for n in 0..<1_024 { try await writer.write([UInt8](repeating: UInt8(n % 251), count: 1_024)) }
                    }, descriptor: Echo.late, serializer: coder, deserializer: coder, options: .defaults) { response in
                    try await response.messages.reduce(0) { total, message in total + message.count }
                }
                await signals.started.wait()
                signals.gate.open()
                let total = try await count
                #expect(total == 1 << 20)
            }
        }
    }

    @Test func aHandlerThatDoesNotReadHoldsBackItsSenderAtTheBound() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            let stream = HTTP2StreamID(1)
            try await raw.send(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Late")))))
            await signals.started.wait()
            // The whole initial window (65,535 bytes), as 63 messages of 1,035 bytes and change.
            var sent = 0
            while sent + 1_040 <= 65_535 {
                try await raw.send(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 1_035, body: .init(repeating: 1, count: 1_035)))))))
                sent += 1_040
            }
            let frames = try await raw.settle()
            let granted = frames.reduce(0) { total, frame in
                if frame.streamID == stream, case let .windowUpdate(increment) = frame.payload { total + increment } else { total }
            }
            // Window comes back only while the unread bytes are under half the bound.
            #expect(granted <= 65_535 / 2)
            #expect(granted > 0)
            signals.gate.open()
            await raw.close()
        }
    }

    @Test func aMessageOverTheLimitIsAnsweredWithTheLimitBeforeItsBodyArrives() async throws {
        try await withEchoServer { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            let stream = HTTP2StreamID(1)
            // Announces 300 KiB (the limit is 256 KiB) and sends 10 bytes of it, without ending.
            try await raw.send(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Unary")))),
                               HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 300 << 10, body: .init(repeating: 0, count: 10)))))))
            let frames = try await raw.frames { if case .rstStream = $0.payload { true } else { false } }
            let trailers = frames.compactMap { frame -> HPACKHeaders? in
                if frame.streamID == stream, case let .headers(headers) = frame.payload, headers.endStream { headers.headers } else { nil }
            }
            #expect(trailers.count == 1)
            #expect(trailers.first?.first(name: "grpc-status") == "8")
            #expect(trailers.first?.first(name: "grpc-message") == "a request of 307200 bytes is over this node's limit of 262144 bytes")
            if case let .rstStream(code) = frames.last?.payload { #expect(code == .noError) }
            await raw.close()
        }
    }

    @Test func aMessageFarOverTheLimitResetsItsStream() async throws {
        try await withEchoServer { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            let stream = HTTP2StreamID(1)
            try await raw.send(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Unary")))),
                               HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 16 << 20, body: .init(repeating: 0, count: 10)))))))
            let frames = try await raw.frames { if case .rstStream = $0.payload { true } else { false } }
            #expect(frames.allSatisfy { frame in if case .headers = frame.payload, frame.streamID == stream { false } else { true } })
            if case let .rstStream(code) = frames.last?.payload { #expect(code == .cancel) } else { Issue.record("no RST_STREAM: \(frames)") }
            await raw.close()
        }
        // grpc-swift-2's client reports a reset stream as UNAVAILABLE (grpc-go: CANCELLED, see
        // InteropTests); the connection serves the next call.
        try await withEchoServer { port, _ in
            try await Self.withClient(port) { client in
                do {
                    _ = try await client.unary(request: ClientRequest(message: [UInt8](repeating: 0, count: 2 << 20)), descriptor: Echo.unary,
                                               serializer: RawBytes(), deserializer: RawBytes(), options: .defaults) { try $0.message }
                    Issue.record("the call succeeded")
                } catch let error as RPCError {
                    #expect(error.code == .unavailable, "\(error)")
                }
                let next = try await client.unary(request: ClientRequest(message: [9]), descriptor: Echo.unary, serializer: RawBytes(), deserializer: RawBytes(),
                                                  options: .defaults) { try $0.message }
                #expect(next == [9])
            }
        }
    }

    @Test func aRequestThatIsNotGRPCGetsHTTPsAnswer() async throws {
        try await withEchoServer { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            var headers = RawHTTP2Client.requestHeaders("/test.Echo/Unary")
            headers.replaceOrAdd(name: "content-type", value: "text/plain")
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: headers, endStream: true))))
            var compressed = RawHTTP2Client.requestHeaders("/test.Echo/Unary")
            compressed.add(name: "grpc-encoding", value: "gzip")
            try await raw.send(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: compressed, endStream: true))))
            let frames = try await raw.settle()
            let answers = Dictionary(frames.compactMap { frame -> (HTTP2StreamID, HPACKHeaders)? in
                if case let .headers(headers) = frame.payload { (frame.streamID, headers.headers) } else { nil }
            }, uniquingKeysWith: { first, _ in first })
            #expect(answers[1]?.first(name: ":status") == "415")
            #expect(answers[3]?.first(name: "grpc-status") == "12")
            #expect(answers[3]?.first(name: "grpc-accept-encoding") == "identity")
            await raw.close()
        }
    }

    /// Refused calls whose DATA was already on its way: swift-nio-http2 drops that DATA (the
    /// stream is reset) but it used the connection's window all the same. 1.25 MiB of it, more
    /// than the whole window, and the next call still gets through.
    @Test func dataDroppedForResetStreamsGivesItsWindowBack() async throws {
        try await withEchoServer { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            var compressed = RawHTTP2Client.requestHeaders("/test.Echo/Unary")
            compressed.add(name: "grpc-encoding", value: "gzip")
            let chunk = ByteBuffer(repeating: 7, count: 16_000)
            for n in 0..<40 {
                let id = HTTP2StreamID(2 * n + 1)
                try await raw.send(HTTP2Frame(streamID: id, payload: .headers(.init(headers: compressed))),
                                   HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(chunk)))),
                                   HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(chunk)))))
            }
            let last = HTTP2StreamID(81)
            try await raw.send(HTTP2Frame(streamID: last, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Unary")))),
                               HTTP2Frame(streamID: last, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 2, body: [1, 2])), endStream: true))))
            let frames = try await raw.frames { frame in
                if frame.streamID == 81, case let .headers(headers) = frame.payload, headers.endStream { true } else { false }
            }
            if case let .headers(trailers) = frames.last?.payload {
                #expect(trailers.headers.first(name: "grpc-status") == "0")
            }
            await raw.close()
        }
    }

    @Test func gracefulShutdownLetsOpenCallsFinishAndSendsGoaway() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, server in
            let raw = try await RawHTTP2Client.connect(port: port)
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Late")))),
                               HTTP2Frame(streamID: 1, payload: .data(.init(data: .byteBuffer(RawHTTP2Client.message(announcing: 3, body: [4, 5, 6])), endStream: true))))
            await signals.started.wait()
            server.beginGracefulShutdown()
            // Two GOAWAYs: the first lets any stream through (one may be on its way), the
            // second, after the PING that follows the first has come back, names the last.
            let beforeAnswer = try await raw.frames { if case let .goAway(last, _, _) = $0.payload, last != .maxID { true } else { false } }
            let goaways = beforeAnswer.compactMap { frame -> (HTTP2StreamID, HTTP2ErrorCode)? in
                if case let .goAway(last, code, _) = frame.payload { (last, code) } else { nil }
            }
            #expect(goaways.map(\.0) == [.maxID, 1])
            #expect(goaways.allSatisfy { $0.1 == .noError })
            signals.gate.open()
            // The open call still answers, then the server closes the connection.
            let rest = try await raw.frames { _ in false }
            let trailers = rest.compactMap { frame -> HPACKHeaders? in if case let .headers(headers) = frame.payload, headers.endStream { headers.headers } else { nil } }
            #expect(trailers.first?.first(name: "grpc-status") == "0")
            #expect(rest.contains { if case .data = $0.payload { true } else { false } })
        }
    }

    @Test func aClosedConnectionCancelsItsCalls() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Wait"), endStream: true))))
            await signals.started.wait()
            await raw.close()
            // Would wait forever if the handler's call were not cancelled.
            await signals.cancelled.wait()
        }
    }

    /// The transport keeps grpc-timeout as a timer on the connection's loop: when it fires,
    /// the call's cancellation handle does, as GRPCCore's own deadline task would.
    @Test func aDeadlineCancelsItsCallAndAMalformedOneIsRefused() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            // A call with a far deadline first: the connection's one timer is set for it, and
            // must be brought forward for the nearer one that follows.
            var far = RawHTTP2Client.requestHeaders("/test.Echo/Bidi")
            far.add(name: "grpc-timeout", value: "100S")
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: far))))
            var headers = RawHTTP2Client.requestHeaders("/test.Echo/Wait")
            headers.add(name: "grpc-timeout", value: "50m")
            try await raw.send(HTTP2Frame(streamID: 3, payload: .headers(.init(headers: headers, endStream: true))))
            // Would wait forever if the deadline did not cancel the call.
            await signals.cancelled.wait()
            var malformed = RawHTTP2Client.requestHeaders("/test.Echo/Unary")
            malformed.add(name: "grpc-timeout", value: "soon")
            try await raw.send(HTTP2Frame(streamID: 5, payload: .headers(.init(headers: malformed, endStream: true))))
            let frames = try await raw.frames { $0.streamID == 5 }
            if case let .headers(answer) = frames.last?.payload {
                #expect(answer.headers.first(name: "grpc-status") == "3")
                #expect(answer.endStream)
            } else {
                Issue.record("no answer to a malformed grpc-timeout: \(frames)")
            }
            await raw.close()
        }
    }

    @Test func aResetStreamCancelsItsCall() async throws {
        let signals = Signals()
        try await withEchoServer(signals: signals) { port, _ in
            let raw = try await RawHTTP2Client.connect(port: port)
            try await raw.send(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: RawHTTP2Client.requestHeaders("/test.Echo/Wait"), endStream: true))))
            await signals.started.wait()
            try await raw.send(HTTP2Frame(streamID: 1, payload: .rstStream(.cancel)))
            await signals.cancelled.wait()
            await raw.close()
        }
    }
}
