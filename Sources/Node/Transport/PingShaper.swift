import NIOCore
import NIOHTTP2

/// Keeps a client's HTTP/2 PINGs under the rate the HTTP/2 layer tolerates.
///
/// grpc-go and gRPC C-core (grpcio) estimate the bandwidth-delay product of a connection by
/// sending a PING each time data arrives and no PING is unanswered: one per round trip while
/// a connection is busy. swift-nio-http2 counts every PING against a denial-of-service limit
/// (200 control frames in 30 s) that grpc-swift-nio-transport does not let a server raise, and
/// past it closes the connection with ENHANCE_YOUR_CALM; a busy client of those libraries lost
/// its connection every fraction of a second (unary calls hid it behind reconnects; a
/// streaming call just ended).
///
/// This handler sits in front of the HTTP/2 handler and reads only frame headers. PINGs that
/// ask for an answer pass while a token bucket (`capacity`, one token per `interval`) has
/// tokens; past it they are held, whole and in order, and handed on as tokens come back, so
/// the client's next estimate simply waits. Every other byte passes at once, unbuffered (a
/// frame's header is held until complete, a PING until its 8 bytes are in). A client that
/// sends PINGs faster than they are answered fills `maxHeld`; the ones past it are handed on
/// at once, and the HTTP/2 layer's own limit closes that connection, as it should.
final class PingShaper: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    struct Budget: Sendable {
        /// PINGs that may pass at once.
        var capacity = 50
        /// How often a token comes back: at most `capacity` plus 30 s / `interval` PINGs reach
        /// the HTTP/2 layer in any 30 s, half its limit, leaving room for SETTINGS frames.
        var interval = TimeAmount.milliseconds(600)
        /// PINGs held waiting for a token.
        var maxHeld = 16
    }

    private static let prefaceLength = 24
    private static let headerLength = 9
    private static let pingLength = headerLength + 8

    private let budget: Budget
    /// Bytes of the connection preface or of a frame's payload still to pass through.
    private var passThrough = PingShaper.prefaceLength
    /// The start of a frame header, or of a PING, that has not fully arrived.
    private var incomplete: ByteBuffer?
    private var tokens: Int
    private var lastRefill: NIODeadline?
    private var held: [ByteBuffer] = []
    private var release: Scheduled<Void>?

    init(budget: Budget = Budget()) {
        self.budget = budget
        tokens = budget.capacity
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var incomplete {
            incomplete.writeBuffer(&buffer)
            buffer = incomplete
            self.incomplete = nil
        }
        let end = buffer.writerIndex
        var runStart = buffer.readerIndex
        var index = runStart
        while index < end {
            if passThrough > 0 {
                let step = min(passThrough, end - index)
                index += step
                passThrough -= step
                continue
            }
            guard end - index >= Self.headerLength,
                  let length = buffer.getInteger(at: index, as: UInt32.self).map({ Int($0 >> 8) }),
                  let type = buffer.getInteger(at: index + 3, as: UInt8.self),
                  let flags = buffer.getInteger(at: index + 4, as: UInt8.self)
            else { break }
            // A PING asking for an answer (type 6, 8 bytes, no ACK flag): an ACK answers one
            // of ours, and a malformed one is for the HTTP/2 layer to refuse.
            guard type == 6, length == 8, flags & 1 == 0 else {
                index += Self.headerLength
                passThrough = length
                continue
            }
            guard end - index >= Self.pingLength else { break }
            if admit(now: context.eventLoop.now) || held.count >= budget.maxHeld {
                index += Self.pingLength
                continue
            }
            forward(buffer, from: runStart, to: index, context: context)
            held.append(buffer.getSlice(at: index, length: Self.pingLength)!)
            index += Self.pingLength
            runStart = index
            scheduleRelease(context: context)
        }
        forward(buffer, from: runStart, to: index, context: context)
        if index < end {
            // At most a PING's worth: copied, so the read's storage is not kept alive.
            var rest = context.channel.allocator.buffer(capacity: end - index)
            rest.writeImmutableBuffer(buffer.getSlice(at: index, length: end - index)!)
            incomplete = rest
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release?.cancel()
        release = nil
        if let incomplete { context.fireChannelRead(wrapInboundOut(incomplete)) }
        for ping in held { context.fireChannelRead(wrapInboundOut(ping)) }
        incomplete = nil
        held = []
    }

    func channelInactive(context: ChannelHandlerContext) {
        release?.cancel()
        release = nil
        held = []
        context.fireChannelInactive()
    }

    private func forward(_ buffer: ByteBuffer, from start: Int, to end: Int, context: ChannelHandlerContext) {
        guard end > start else { return }
        context.fireChannelRead(wrapInboundOut(buffer.getSlice(at: start, length: end - start)!))
    }

    /// Takes a token if there is one, after adding those earned since the last refill.
    private func admit(now: NIODeadline) -> Bool {
        refill(now: now)
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }

    private func refill(now: NIODeadline) {
        guard let last = lastRefill else {
            lastRefill = now
            return
        }
        let earned = Int((now - last).nanoseconds / budget.interval.nanoseconds)
        guard earned > 0 else { return }
        tokens = min(budget.capacity, tokens + earned)
        lastRefill = tokens == budget.capacity ? now : last + budget.interval * earned
    }

    private func scheduleRelease(context: ChannelHandlerContext) {
        guard release == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        release = context.eventLoop.scheduleTask(in: budget.interval) {
            let (shaper, context) = bound.value
            shaper.release = nil
            shaper.releaseHeld(context: context)
        }
    }

    /// Hands on the held PINGs that tokens allow, oldest first.
    private func releaseHeld(context: ChannelHandlerContext) {
        var released = false
        while !held.isEmpty, admit(now: context.eventLoop.now) {
            context.fireChannelRead(wrapInboundOut(held.removeFirst()))
            released = true
        }
        if released { context.fireChannelReadComplete() }
        if !held.isEmpty { scheduleRelease(context: context) }
    }
}

extension PingShaper {
    /// Puts a shaper in front of the HTTP/2 handler of an accepted connection (after TLS, so
    /// it reads plaintext frames), from the transport's `onAcceptTCPConnection` callback.
    static func install(in pipeline: ChannelPipeline.SynchronousOperations) throws {
        let http2 = try pipeline.handler(type: NIOHTTP2Handler.self)
        try pipeline.addHandler(PingShaper(), position: .before(http2))
    }
}
