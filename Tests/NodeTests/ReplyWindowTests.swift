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
            await window.begin()
            done.set()
        }
        try? await Task.sleep(for: .milliseconds(50))
        return (task, done)
    }

    @Test func aReplyAnsweredButNotWrittenKeepsItsPlace() async {
        let (window, replies) = ReplyWindow<Int>.make(window: 2)
        await window.begin()
        await window.begin()
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
        await window.begin()
        await window.begin()
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
}
