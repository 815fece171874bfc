import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Serves the gRPC calls of one HTTP/2 connection from the connection's own pipeline: every
/// stream's frames arrive here, on the event loop that read them, with no child channel per
/// stream. A call's handler is a task that prefers the same loop, so a unary call is read,
/// handled and answered on one thread, and the answers of one read burst leave in one flush.
///
/// Flow control is this handler's too (swift-nio-http2 leaves it to whoever reads the frames
/// when no multiplexer does): the connection's window is given back as DATA arrives, a
/// stream's as its handler reads, so a handler that stops reading holds back its own sender.
final class InlineConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// Asks a connection to stop taking new calls and close once its calls have ended.
    struct Drain: Sendable {}

    private let server: InlineServerTransport.Running
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: InlineStream] = [:]
    private var remotePeer = ""
    private var localPeer = ""
    /// The highest stream the client opened: the last one a GOAWAY lets finish.
    private var lastStreamID = HTTP2StreamID.rootStream
    /// Shutting down takes two GOAWAYs (gRFC A9's way, as grpc-go and grpc-swift do): the first
    /// allows every stream, so a call already on its way is not lost; after the PING that
    /// follows it comes back, the client has seen it, and the second names the last stream.
    private var drain = DrainState.serving
    /// Streams open at the HTTP/2 level, until swift-nio-http2 says each closed: what it still
    /// holds for one (DATA waiting for window, trailers behind it) is sent before the drain
    /// closes the connection.
    private var liveStreams = Set<HTTP2StreamID>()
    private var closing = false
    /// Connection window granted in WINDOW_UPDATEs not yet written.
    private var windowOnItsWay = 0
    private var reading = false
    private var flushPending = false
    private var flushScheduled = false
    private var lastRead = NIODeadline.now()
    private var keepalive: Scheduled<Void>?
    /// One timer for every call's deadline, set for the earliest: clients that send a deadline
    /// with each call (grpc-go's callers mostly do) cost no timer per call.
    private var deadlineTimer: (at: NIODeadline, task: Scheduled<Void>)?
    private var pingTimeout: Scheduled<Void>?
    private static let keepalivePing = HTTP2PingData(withInteger: 0x6368_6F72_7573_6B61)
    private static let drainPing = HTTP2PingData(withInteger: 0x6472_6169_6E69_6E67)

    private enum DrainState {
        case serving
        /// The first GOAWAY and its PING are out.
        case announced
        /// The second GOAWAY is out (or the client sent one): no new stream is taken, and the
        /// connection closes once the last one has.
        case closing
    }

    init(server: InlineServerTransport.Running) {
        self.server = server
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        becameActive(context: context)
        context.fireChannelActive()
    }

    /// After the pipeline is complete (TLS is added after this handler, at its front).
    private func becameActive(context: ChannelHandlerContext) {
        remotePeer = Self.peer(context.channel.remoteAddress)
        localPeer = Self.peer(context.channel.localAddress)
        server.connections.add(context.channel)
        // The connection's window starts at 65,535 bytes; a larger one lets many streams send at once.
        let increment = server.configuration.connectionWindow - 65_535
        if increment > 0 {
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
        }
        scheduleKeepalive(context: context, after: server.configuration.keepaliveInterval)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadlineTimer?.task.cancel()
        keepalive?.cancel()
        pingTimeout?.cancel()
        for stream in Array(streams.values) {
            forget(stream)
            stream.cancel(RPCError(code: .unavailable, message: "the connection closed"), endingTask: true)
        }
        server.connections.remove(context.channel)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream's protocol error resets that stream alone (swift-nio-http2 has sent the
        // RST_STREAM); anything else ends the connection.
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            if let stream = streams[streamError.streamID] {
                forget(stream)
                stream.cancel(RPCError(code: .cancelled, message: "the stream was reset: \(streamError.baseError)"))
                closeIfDrained(context: context)
            }
            return
        }
        context.close(promise: nil)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is Drain else { return context.triggerUserOutboundEvent(event, promise: promise) }
        promise?.succeed()
        guard case .serving = drain else { return }
        drain = .announced
        context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(Self.drainPing, ack: false))), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent {
            liveStreams.remove(closed.streamID)
            if let stream = streams[closed.streamID] {
                // Closed under the call (a reset in either direction): it ends here.
                forget(stream)
                stream.cancel(RPCError(code: .cancelled, message: "the stream closed before the call ended"))
            }
            closeIfDrained(context: context)
        } else if let window = event as? NIOHTTP2WindowUpdatedEvent, window.streamID == .rootStream, let inbound = window.inboundWindowSize {
            // The connection's window, as swift-nio-http2 counts it: DATA it dropped (for a
            // stream already reset) used it up too, and comes back here with the rest.
            // A WINDOW_UPDATE held back while the socket is full is not yet in that count:
            // what is on its way is counted apart, so a client that stops reading while it
            // sends is not granted the window again with each frame.
            let target = server.configuration.connectionWindow
            if inbound + windowOnItsWay <= target / 2 {
                let increment = target - inbound - windowOnItsWay
                windowOnItsWay += increment
                let written = context.eventLoop.makePromise(of: Void.self)
                context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))), promise: written)
                written.futureResult.assumeIsolated().whenComplete { [self] _ in windowOnItsWay -= increment }
                flushSoon(context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case let .headers(headers):
            if let stream = streams[frame.streamID] {
                // Trailers from a client: no gRPC client sends them, but they end its request.
                if headers.endStream { endRequest(stream) }
            } else {
                open(frame.streamID, headers, context: context)
            }
        case let .data(payload):
            let length = payload.data.readableBytes + (payload.paddingBytes ?? 0)
            if let stream = streams[frame.streamID], case let .byteBuffer(bytes) = payload.data {
                receive(bytes, length: length, endStream: payload.endStream, on: stream, context: context)
            }
        case .rstStream:
            if let stream = streams[frame.streamID] {
                forget(stream)
                stream.cancel(RPCError(code: .cancelled, message: "the client cancelled the call"))
                closeIfDrained(context: context)
            }
        case let .ping(data, ack: true) where data == Self.keepalivePing:
            pingTimeout?.cancel()
            pingTimeout = nil
        case let .ping(data, ack: true) where data == Self.drainPing:
            drain = .closing
            write(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil)), context: context)
            closeIfDrained(context: context)
        case .goAway:
            // The client opens no more streams: once its calls end, so does the connection.
            drain = .closing
            closeIfDrained(context: context)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        lastRead = .now()
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func open(_ id: HTTP2StreamID, _ headers: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        if id > lastStreamID { lastStreamID = id }
        liveStreams.insert(id)
        if case .closing = drain {
            write(HTTP2Frame(streamID: id, payload: .rstStream(.refusedStream)), context: context)
            return
        }
        let request: GRPCHeaders.Request
        // Looked up once, while the headers are read: a unary handler's call needs no metadata.
        let unaryHandlers = server.configuration.unaryHandlers
        var unary: InlineServerTransport.UnaryHandler?
        switch GRPCHeaders.request(headers.headers, methods: server.methods, wantsMetadata: { path in
            unary = path.flatMap { unaryHandlers[$0] }
            return unary == nil
        }) {
        case let .success(parsed):
            request = parsed
        case let .failure(refusal):
            write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: refusal.headers, endStream: true))), context: context)
            if !headers.endStream { write(HTTP2Frame(streamID: id, payload: .rstStream(.noError)), context: context) }
            return
        }
        let stream = InlineStream(id: id, descriptor: request.method, unary: unary, limit: server.configuration.requestLimit(request.method),
                                  queueBound: server.configuration.streamWindow, connection: self, eventLoop: context.eventLoop)
        streams[id] = stream
        if let timeout = request.timeout {
            let deadline = NIODeadline.now() + timeout
            stream.onLoop.value.deadline = deadline
            armDeadlines(at: deadline, context: context)
        }
        if unary != nil {
            // Started when the request ends, with its one message.
            stream.onLoop.value.opened = .now()
            if headers.endStream { endRequest(stream) }
            return
        }
        stream.deliver(.metadata(request.metadata))
        if headers.endStream { endRequest(stream) }
        start(stream)
    }

    /// Runs a `UnaryHandler` for the call's request, as a task on the preferred executor, and
    /// answers on the loop.
    private func startUnary(_ stream: InlineStream, _ handler: @escaping InlineServerTransport.UnaryHandler, request: InlineBytes) {
        stream.onLoop.value.started = true
        runCall(stream) { context in
            let result: Result<InlineBytes, any Error>
            do {
                result = .success(try await handler(request, context))
            } catch {
                result = .failure(error)
            }
            if stream.eventLoop.inEventLoop {
                stream.connection.value.answer(stream, with: result)
            } else {
                stream.eventLoop.execute { stream.connection.value.answer(stream, with: result) }
            }
        }
    }

    /// A unary call's answer: headers, the message and OK trailers; or only trailers.
    private func answer(_ stream: InlineStream, with result: Result<InlineBytes, any Error>) {
        do {
            switch result {
            case let .success(response):
                _ = try write(.message(response), on: stream)
                _ = try write(.status(Status(code: .ok, message: ""), Metadata()), on: stream)
            case let .failure(error):
                let (status, metadata) = GRPCHeaders.status(of: error)
                _ = try write(.status(status, metadata), on: stream)
            }
        } catch {
            // The call ended under its handler (a reset, a closed connection): no one to answer.
        }
    }

    /// A unary call the transport answers itself, before any handler.
    private func refuseUnary(_ stream: InlineStream, _ error: RPCError) {
        let status = Status(code: Status.Code(error.code), message: error.message)
        reportUnrun(stream, status)
        _ = try? write(.status(status, Metadata()), on: stream)
    }

    /// Tells the routes' owner of a unary call that ends before its handler ran.
    private func reportUnrun(_ stream: InlineStream, _ status: Status) {
        let state = stream.onLoop.value
        guard stream.unary != nil, !state.started, state.response != .closed else { return }
        let elapsed = state.opened.map { Duration.nanoseconds((NIODeadline.now() - $0).nanoseconds) } ?? .zero
        server.configuration.unaryRefused(stream.descriptor, status, elapsed)
    }

    /// Runs the call's handler as a task on the preferred executor (this loop, for a node).
    private func start(_ stream: InlineStream) {
        let handler = server.handler
        runCall(stream) { context in
            let rpc = RPCStream(descriptor: stream.descriptor, inbound: RPCAsyncSequence(wrapping: InlineInbound(stream: stream)),
                                outbound: RPCWriter.Closable(wrapping: InlineOutbound(stream: stream)))
            await handler(rpc, context)
        }
    }

    /// Runs `body` as the call's task on the preferred executor (this loop, for a node), with
    /// the call's context and cancellation handle, counted in `Calls` until it ends.
    private func runCall(_ stream: InlineStream, _ body: @escaping @Sendable (ServerContext) async -> Void) {
        let calls = server.calls
        let (remotePeer, localPeer) = (self.remotePeer, self.localPeer)
        let call = calls.enter()
        let task = Task(executorPreference: server.configuration.executor) {
            await withServerContextRPCCancellationHandle { handle in
                stream.attach(handle)
                await body(ServerContext(descriptor: stream.descriptor, remotePeer: remotePeer, localPeer: localPeer, cancellation: handle))
            }
            calls.leave(call)
        }
        stream.attachTask(task)
        calls.attach(call, task)
    }

    private func receive(_ data: ByteBuffer, length: Int, endStream: Bool, on stream: InlineStream, context: ChannelHandlerContext) {
        guard !stream.onLoop.value.requestEnded else { return }
        if !stream.onLoop.value.discarding {
            var violation: MessageDeframer.Outcome?
            // In place: a message gathered across frames is appended to, never copied.
            // The closure runs inside the box's modify access: it must not touch the box.
            let unary = stream.unary != nil
            var unaryMessage: ByteBuffer?
            var unaryMessages = 0
            stream.onLoop.value.deframer.receive(data) { outcome in
                switch outcome {
                case let .message(bytes) where !unary: stream.deliver(.message(InlineBytes(buffer: bytes)))
                case let .message(bytes):
                    unaryMessages += 1
                    unaryMessage = bytes
                default: violation = outcome
                }
            }
            if unaryMessages == 1, stream.onLoop.value.request == nil, let unaryMessage {
                stream.onLoop.value.request = InlineBytes(buffer: unaryMessage)
            } else if unaryMessages > 0 {
                stream.onLoop.value.discarding = true
                return refuseUnary(stream, RPCError(code: .internalError, message: "Too many messages."))
            }
            if let violation {
                return refuse(stream, violation, context: context)
            }
        }
        if endStream {
            return endRequest(stream)
        }
        stream.onLoop.value.uncredited += length
        credit(stream)
    }

    /// Gives the client back this stream's window, unless the handler has too much unread.
    func credit(_ stream: InlineStream) {
        guard let context, streams[stream.id] === stream else { return }
        let state = stream.onLoop.value
        guard !state.requestEnded, !state.discarding, state.uncredited >= server.configuration.streamWindow / 4 || state.deframer.hasPartialMessage && state.uncredited > 0 else { return }
        guard !stream.wantCredit() else { return }
        write(HTTP2Frame(streamID: stream.id, payload: .windowUpdate(windowSizeIncrement: state.uncredited)), context: context)
        stream.onLoop.value.uncredited = 0
        flushSoon(context: context)
    }

    private func endRequest(_ stream: InlineStream) {
        stream.onLoop.value.requestEnded = true
        if let handler = stream.unary {
            guard stream.onLoop.value.response != .closed, !stream.onLoop.value.discarding else {
                if let context { remove(stream, context: context) }
                return
            }
            if stream.onLoop.value.deframer.hasPartialMessage {
                refuseUnary(stream, RPCError(code: .internalError, message: "the request ended in the middle of a message"))
            } else if let request = stream.onLoop.value.request {
                stream.onLoop.value.request = nil
                startUnary(stream, handler, request: request)
            } else {
                refuseUnary(stream, RPCError(code: .internalError, message: "Empty stream."))
            }
            return
        }
        if stream.onLoop.value.deframer.hasPartialMessage {
            stream.fail(RPCError(code: .internalError, message: "the request ended in the middle of a message"))
        } else {
            stream.finishRequest()
        }
        if stream.onLoop.value.response == .closed, let context { remove(stream, context: context) }
    }

    /// A message over its method's limit: the handler's next read fails with
    /// RESOURCE_EXHAUSTED naming the limit (its status goes to the client as any other), and
    /// the rest of the request is dropped as it arrives. Past the reset bound, or a compressed
    /// message, ends the stream at once.
    private func refuse(_ stream: InlineStream, _ violation: MessageDeframer.Outcome, context: ChannelHandlerContext) {
        let limit = stream.onLoop.value.deframer.limit
        switch violation {
        case let .oversized(size):
            stream.onLoop.value.discarding = true
            let error = RPCError(code: .resourceExhausted, message: "a request of \(size) bytes is over this node's limit of \(limit.maxMessageBytes) bytes")
            if stream.unary != nil { refuseUnary(stream, error) } else { stream.fail(error) }
        case .reset:
            forget(stream)
            write(HTTP2Frame(streamID: stream.id, payload: .rstStream(.cancel)), context: context)
            flushSoon(context: context)
            stream.cancel(RPCError(code: .cancelled, message: "the request is far over the limit; the stream was reset"))
            closeIfDrained(context: context)
        case .compressed:
            stream.onLoop.value.discarding = true
            let error = RPCError(code: .internalError, message: "a compressed message, but the request named no compression")
            if stream.unary != nil { refuseUnary(stream, error) } else { stream.fail(error) }
        case .message:
            break
        }
    }

    // MARK: Writing

    /// Writes one part of a call's response. Returns a future to wait for when the stream has
    /// too much unwritten; throws when the call can no longer answer.
    func write(_ part: RPCResponsePart<InlineBytes>, on stream: InlineStream) throws -> EventLoopFuture<Void>? {
        guard let context else { throw RPCError(code: .unavailable, message: "the connection closed") }
        let id = stream.id
        switch (stream.onLoop.value.response, part) {
        case (.closed, .status):
            return nil
        case (.closed, _):
            throw RPCError(code: .cancelled, message: "the call has ended")
        case let (.idle, .metadata(metadata)):
            stream.onLoop.value.response = .open
            write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: GRPCHeaders.responseHeaders(metadata)))), context: context)
        case (.open, .metadata):
            throw RPCError(code: .internalError, message: "response metadata sent twice")
        case let (state, .message(bytes)):
            if state == .idle {
                stream.onLoop.value.response = .open
                write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: GRPCHeaders.responseHeaders))), context: context)
            }
            stream.onLoop.value.messagesWritten += 1
            let framed = MessageFraming.frame(bytes)
            let frame = HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(framed))))
            // A second message makes it a stream: from then on the bytes not yet on the socket
            // are counted, and past the bound the writer waits for its message to leave, so a
            // client that reads slowly slows its handler instead of filling memory.
            if stream.onLoop.value.messagesWritten > 1 {
                let size = framed.readableBytes
                let promise = context.eventLoop.makePromise(of: Void.self)
                stream.onLoop.value.unwritten += size
                promise.futureResult.whenComplete { _ in stream.onLoop.value.unwritten -= size }
                context.write(wrapOutboundOut(frame), promise: promise)
                flushSoon(context: context)
                return stream.onLoop.value.unwritten > server.configuration.streamWindow ? promise.futureResult : nil
            }
            write(frame, context: context)
        case let (state, .status(status, metadata)):
            let headers = state == .idle ? GRPCHeaders.trailersOnly(status, metadata) : GRPCHeaders.trailers(status, metadata)
            let trailers = HTTP2Frame(streamID: id, payload: .headers(.init(headers: headers, endStream: true)))
            // Before the write: swift-nio-http2 may report the stream closed from inside it.
            stream.onLoop.value.response = .closed
            if stream.onLoop.value.requestEnded {
                write(trailers, context: context)
            } else {
                // The client may stop sending: the answer is given. The reset waits until the
                // trailers (and any DATA held back for window before them) are out, or it
                // would discard them.
                let written = context.eventLoop.makePromise(of: Void.self)
                context.write(wrapOutboundOut(trailers), promise: written)
                written.futureResult.assumeIsolated().whenSuccess { [self] in
                    guard let context = self.context, liveStreams.contains(id) else { return }
                    write(HTTP2Frame(streamID: id, payload: .rstStream(.noError)), context: context)
                    flushSoon(context: context)
                }
                stream.cancel(RPCError(code: .cancelled, message: "the call has ended"))
            }
            remove(stream, context: context)
        }
        flushSoon(context: context)
        return nil
    }

    private func write(_ frame: HTTP2Frame, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(frame), promise: nil)
        flushPending = true
    }

    /// One flush for everything written in this read burst, or in this turn of the loop.
    private func flushSoon(context: ChannelHandlerContext) {
        flushPending = true
        guard !reading, !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            guard self.flushPending, let context = self.context else { return }
            self.flushPending = false
            context.flush()
        }
    }

    private func remove(_ stream: InlineStream, context: ChannelHandlerContext) {
        forget(stream)
        closeIfDrained(context: context)
    }

    /// The stream is done on this connection: nothing more is written for it, its deadline
    /// timer stops, and it leaves the table.
    private func forget(_ stream: InlineStream) {
        // A unary call that ends here unanswered was cancelled (a reset, a closed connection).
        reportUnrun(stream, Status(code: .cancelled, message: "the call ended before it was answered"))
        stream.onLoop.value.response = .closed
        stream.onLoop.value.deadline = nil
        if streams[stream.id] === stream { streams[stream.id] = nil }
    }

    /// Closes a closing connection once no stream is open, after what was written for them
    /// has reached the socket (one last GOAWAY, and the close when it is written).
    private func closeIfDrained(context: ChannelHandlerContext) {
        guard case .closing = drain, streams.isEmpty, liveStreams.isEmpty, !closing else { return }
        closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil))),
                              promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] _ in self.context?.close(promise: nil) }
    }

    // MARK: Deadlines

    private func armDeadlines(at deadline: NIODeadline, context: ChannelHandlerContext) {
        if let armed = deadlineTimer {
            guard deadline < armed.at else { return }
            armed.task.cancel()
        }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in expireDeadlines() }
        deadlineTimer = (deadline, task)
    }

    /// Fires the cancellation handle of each call past its deadline (as GRPCCore's own
    /// deadline would), and sets the timer for the next.
    private func expireDeadlines() {
        deadlineTimer = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for stream in streams.values {
            guard let deadline = stream.onLoop.value.deadline else { continue }
            if deadline <= now {
                stream.onLoop.value.deadline = nil
                stream.cancelHandle()
            } else {
                next = min(next ?? deadline, deadline)
            }
        }
        if let next, let context { armDeadlines(at: next, context: context) }
    }

    // MARK: Keepalive

    /// Pings a connection quiet for `keepaliveInterval`; no answer within `keepaliveTimeout`
    /// closes it, so a vanished client's calls and subscriptions end.
    private func scheduleKeepalive(context: ChannelHandlerContext, after delay: TimeAmount) {
        keepalive = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            guard let context = self.context else { return }
            let interval = server.configuration.keepaliveInterval
            let quiet = NIODeadline.now() - lastRead
            guard quiet >= interval else { return scheduleKeepalive(context: context, after: interval - quiet) }
            if pingTimeout == nil {
                context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(Self.keepalivePing, ack: false))), promise: nil)
                pingTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: server.configuration.keepaliveTimeout) { [self] in
                    self.context?.close(promise: nil)
                }
            }
            scheduleKeepalive(context: context, after: interval)
        }
    }

    /// gRPC's peer strings: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path".
    private static func peer(_ address: SocketAddress?) -> String {
        switch address {
        case .v4?: "ipv4:\(address?.ipAddress ?? ""):\(address?.port ?? 0)"
        case .v6?: "ipv6:[\(address?.ipAddress ?? "")]:\(address?.port ?? 0)"
        case .unixDomainSocket?: "unix:\(address?.pathname ?? "")"
        case nil: "unknown"
        }
    }
}
