import GRPCCore
import Synchronization
import Testing
@testable import Node

/// The bound of a multiplexed stream (`ReplyWindow`), without a stream: a place is taken when
/// a request is read and given back only when its reply is written.
@Suite struct ReplyWindowTests {
    final class Flag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    /// A task that takes a place, and whether it has, once the task had time to run.
    static func began(_ window: ReplyWindow<Int>) async -> (Task<Void, Never>, Flag) {
        let done = Flag()
        let task = Task {
            if await window.begin() { done.set() }
        }
        try? await Task.sleep(for: .milliseconds(50))
        return (task, done)
    }

    @Test func aReplyAnsweredButNotWrittenKeepsItsPlace() async {
        let (window, replies) = ReplyWindow<Int>.make(window: 2)
        #expect(await window.begin())
        #expect(await window.begin())
        window.end(1)
        window.end(2)
        // Both answered, neither written (a client that stops reading): the reader waits.
        let (third, began) = await Self.began(window)
        #expect(!began.isSet)
        var iterator = replies.makeAsyncIterator()
        #expect(await iterator.next() == 1)
        window.written()
        await third.value
        #expect(began.isSet)
    }

    @Test func theRepliesEndOnceTheInputEndedAndEveryReplyIsWritten() async {
        let (window, replies) = ReplyWindow<Int>.make(window: 4)
        #expect(await window.begin())
        #expect(await window.begin())
        window.end(7)
        window.inputEnded()
        window.end(8)
        var written: [Int] = []
        for await reply in replies {
            written.append(reply)
            window.written()
        }
        #expect(written == [7, 8])
    }

    @Test func anEmptyStreamEndsAtOnce() async {
        let (window, replies) = ReplyWindow<Int>.make(window: 4)
        window.inputEnded()
        var count = 0
        for await _ in replies { count += 1 }
        #expect(count == 0)
    }

    @Test func abandoningFreesAWaitingReaderAndRefusesEveryLaterPlace() async {
        let (window, _) = ReplyWindow<Int>.make(window: 1)
        #expect(await window.begin())
        let waiting = Task { await window.begin() }
        try? await Task.sleep(for: .milliseconds(50))
        window.abandon()
        #expect(await waiting.value == false)
        #expect(await window.begin() == false)
    }

    /// Writes nothing: the client went away.
    struct GoneWriter: RPCWriterProtocol {
        struct Gone: Error {}
        func write(_ element: Int) async throws { throw Gone() }
        func write(contentsOf elements: some Sequence<Int>) async throws { throw Gone() }
    }

    /// Resumes a continuation with the first answer given, once.
    final class FirstAnswer: Sendable {
        private let continuation: Mutex<CheckedContinuation<String, Never>?>
        init(_ continuation: CheckedContinuation<String, Never>) { self.continuation = Mutex(continuation) }
        func give(_ answer: String) { continuation.withLock { $0.take() }?.resume(returning: answer) }
    }

    /// A stream whose window is full when its writer fails must end, not wait forever for a
    /// place that only a write would free.
    @Test func aStreamWhoseWriterFailsEndsWithAFullWindow() async throws {
        let (requests, more) = AsyncStream<Int>.makeStream()
        for n in 1...10 { more.yield(n) }
        let serving = Task {
            try await ReplyWindow.serve(RPCAsyncSequence(wrapping: requests.map { $0 }), writingTo: RPCWriter(wrapping: GoneWriter()), window: 2) { request, inFlight, _ in
                inFlight.end(request)
            }
        }
        let ended = Task {
            do {
                try await serving.value
                return "returned"
            } catch is GoneWriter.Gone {
                return "the writer's error"
            } catch {
                return "\(error)"
            }
        }
        // Whichever comes first; a stream that hangs is left behind, not waited for.
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let first = FirstAnswer(continuation)
            Task { first.give(await ended.value) }
            Task {
                try? await Task.sleep(for: .seconds(5))
                first.give("still serving after 5 s")
            }
        }
        #expect(outcome == "the writer's error")
        more.finish()
    }
}
