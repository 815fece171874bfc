import Synchronization

/// Values handed from any thread to one async consumer, which takes everything that arrived
/// while it was busy in one go.
///
/// A stream writer that takes one message per turn writes and flushes each on its own: one
/// syscall, one HTTP/2 frame and one wake-up of the reader per message. Taking a batch lets
/// the writer pass the whole of it to `RPCWriter.write(contentsOf:)`, which flushes once.
public final class Mailbox<Value: Sendable>: Sendable {
    private let state = Mutex<(items: [Value], finished: Bool)>(([], false))
    /// At most one pending wake-up: the consumer drains everything when it runs.
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>

    public init() {
        (signals, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Adds `element` for the consumer; false (and dropped) once the mailbox is finished.
    @discardableResult
    public func push(_ element: Value) -> Bool {
        let accepted = state.withLock { state in
            guard !state.finished else { return false }
            state.items.append(element)
            return true
        }
        if accepted { signal.yield() }
        return accepted
    }

    /// No more elements: the consumer's batches end once it has taken what is left.
    public func finish() {
        state.withLock { $0.finished = true }
        signal.finish()
    }

    /// The batches, in arrival order, until the mailbox is finished and drained. For one
    /// consumer only.
    public var batches: Batches { Batches(mailbox: self) }

    fileprivate func take() -> (items: [Value], finished: Bool) {
        state.withLock { state in
            defer { state.items = [] }
            return (state.items, state.finished)
        }
    }

    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [Value]
        public typealias Failure = Never
        let mailbox: Mailbox

        public func makeAsyncIterator() -> Iterator {
            Iterator(mailbox: mailbox, signals: mailbox.signals.makeAsyncIterator())
        }

        public struct Iterator: AsyncIteratorProtocol {
            let mailbox: Mailbox
            var signals: AsyncStream<Void>.Iterator

            public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async -> [Value]? {
                while true {
                    let (items, finished) = mailbox.take()
                    if !items.isEmpty { return items }
                    if finished { return nil }
                    // Ends only after `finish`, and then the loop sees `finished`.
                    _ = await signals.next(isolation: actor)
                }
            }

            public mutating func next() async -> [Value]? {
                await next(isolation: nil)
            }
        }
    }
}
