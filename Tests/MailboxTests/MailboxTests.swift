import Foundation
import Mailbox
import Testing

@Suite struct MailboxTests {
    @Test func takesEverythingQueuedInOneBatch() async {
        let mailbox = Mailbox<Int>(capacity: 100)
        for value in 1...5 { mailbox.push(value) }
        var batches = mailbox.batches.makeAsyncIterator()
        #expect(await batches.next() == [1, 2, 3, 4, 5])
        mailbox.push(6)
        #expect(await batches.next() == [6])
    }

    @Test func endsAfterTheLastBatchOnceFinished() async {
        let mailbox = Mailbox<Int>(capacity: 100)
        mailbox.push(1)
        mailbox.push(2)
        mailbox.finish()
        #expect(mailbox.push(3) == false)
        var taken: [[Int]] = []
        for await batch in mailbox.batches { taken.append(batch) }
        #expect(taken == [[1, 2]])
    }

    @Test func aWaitingConsumerWakesForAPush() async {
        let mailbox = Mailbox<String>(capacity: 100)
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
        let mailbox = Mailbox<(producer: Int, value: Int)>(capacity: 100_000)
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

    // MARK: The bound

    @Test func aFullRefusingMailboxTurnsValuesAwayAndKeepsWhatItHas() async {
        let mailbox = Mailbox<Int>(capacity: 3)
        #expect(mailbox.push(contentsOf: [1, 2, 3, 4, 5]) == 3)
        #expect(mailbox.push(6) == false)
        #expect(mailbox.waiting == 3)
        var batches = mailbox.batches.makeAsyncIterator()
        #expect(await batches.next() == [1, 2, 3])
        #expect(mailbox.push(7) == true)
        #expect(await batches.next() == [7])
    }

    @Test func aFullDroppingMailboxPushesOutTheOldest() async {
        let mailbox = Mailbox<Int>(capacity: 3, overflow: .dropOldest)
        #expect(mailbox.push(contentsOf: 1...5) == 5)
        #expect(mailbox.droppedCount == 2)
        var batches = mailbox.batches.makeAsyncIterator()
        #expect(await batches.next() == [3, 4, 5])
    }

    @Test func weightedBatchesStayUnderTheirLimitButTakeOneAtLeast() async {
        let mailbox = Mailbox<Int>(capacity: 100)
        mailbox.push(contentsOf: [3, 3, 3, 10, 1])
        var batches = mailbox.batches(maxWeight: 7, weight: { $0 }).makeAsyncIterator()
        #expect(await batches.next() == [3, 3])
        #expect(await batches.next() == [3])
        #expect(await batches.next() == [10], "heavier than the limit alone, still taken")
        #expect(await batches.next() == [1])
    }

    /// A link that reconnects is a new consumer of the same mailbox: it is woken as the first
    /// was, and a cancelled consumer leaves nothing behind that ends the next one.
    @Test func aNewConsumerTakesOverAfterACancelledOne() async {
        let mailbox = Mailbox<Int>(capacity: 100)
        let first = Task {
            var batches = mailbox.batches.makeAsyncIterator()
            return await batches.next()
        }
        try? await Task.sleep(for: .milliseconds(20))
        first.cancel()
        #expect(await first.value == nil)
        var second = mailbox.batches.makeAsyncIterator()
        mailbox.push(1)
        #expect(await second.next() == [1])
        mailbox.push(2)
        #expect(await second.next() == [2])
    }

    // MARK: A consumer thread

    @Test func aThreadTakesAtTheDeadlineAtAPushOrAtTheEnd() {
        let mailbox = Mailbox<Int>(capacity: 100)
        let clock = ContinuousClock()
        let started = clock.now
        #expect(mailbox.take(waitingAtMost: .milliseconds(30)) == [])
        #expect(clock.now - started >= .milliseconds(30))
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.02)
            mailbox.push(contentsOf: [1, 2])
        }
        #expect(mailbox.take(waitingAtMost: .seconds(10)) == [1, 2])
        mailbox.push(3)
        mailbox.finish()
        #expect(mailbox.take(waitingAtMost: .seconds(10)) == [3], "what was pushed before the end is still taken")
        #expect(mailbox.take(waitingAtMost: .seconds(10)) == nil)
        #expect(mailbox.push(4) == false)
    }

    /// The replica's inbox used a semaphore that gained a permit per push, so its loop woke
    /// once per value and found nothing after the first: every wake-up here finds values.
    @Test func aWaitingThreadIsNeverWokenToFindNothing() {
        let mailbox = Mailbox<Int>(capacity: 100_000)
        let producers = 3, count = 3_000
        let done = DispatchGroup()
        for _ in 0..<producers {
            done.enter()
            Thread.detachNewThread {
                for value in 0..<count {
                    mailbox.push(value)
                    if value % 100 == 0 { Thread.sleep(forTimeInterval: 0.0005) }
                }
                done.leave()
            }
        }
        Thread.detachNewThread {
            done.wait()
            mailbox.finish()
        }
        var taken = 0, emptyWakeUps = 0
        while let batch = mailbox.take(waitingAtMost: .seconds(30)) {
            if batch.isEmpty { emptyWakeUps += 1 }
            taken += batch.count
        }
        #expect(taken == producers * count)
        #expect(emptyWakeUps == 0)
    }
}
