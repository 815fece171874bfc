import Foundation
import Mailbox
import Testing

@Suite struct MailboxTests {
    @Test func takesEverythingQueuedInOneBatch() async {
        let mailbox = Mailbox<Int>()
        for value in 1...5 { mailbox.push(value) }
        var batches = mailbox.batches.makeAsyncIterator()
        #expect(await batches.next() == [1, 2, 3, 4, 5])
        mailbox.push(6)
        #expect(await batches.next() == [6])
    }

    @Test func endsAfterTheLastBatchOnceFinished() async {
        let mailbox = Mailbox<Int>()
        mailbox.push(1)
        mailbox.push(2)
        mailbox.finish()
        #expect(mailbox.push(3) == false)
        var taken: [[Int]] = []
        for await batch in mailbox.batches { taken.append(batch) }
        #expect(taken == [[1, 2]])
    }

    @Test func aWaitingConsumerWakesForAPush() async {
        let mailbox = Mailbox<String>()
        async let first: [String]? = {
            var batches = mailbox.batches.makeAsyncIterator()
            return await batches.next()
        }()
        try? await Task.sleep(for: .milliseconds(20))
        mailbox.push("late")
        #expect(await first == ["late"])
    }

    /// Producers on their own threads: nothing lost, nothing duplicated, each producer's
    /// values in the order it pushed them.
    @Test func keepsEveryProducersOrder() async {
        let mailbox = Mailbox<(producer: Int, value: Int)>()
        let producers = 4, count = 5_000
        let done = DispatchGroup()
        for producer in 0..<producers {
            done.enter()
            Thread.detachNewThread {
                for value in 0..<count { mailbox.push((producer, value)) }
                done.leave()
            }
        }
        Thread.detachNewThread {
            done.wait()
            mailbox.finish()
        }
        var next = Array(repeating: 0, count: producers)
        var batches = 0
        for await batch in mailbox.batches {
            batches += 1
            for (producer, value) in batch {
                #expect(value == next[producer])
                next[producer] = value + 1
            }
        }
        #expect(next == Array(repeating: count, count: producers))
        #expect(batches >= 1)
    }
}
