@testable import Node
import Projections
import Raft
@testable import Replica
import Synchronization
import Testing

/// The Raft loop's bookkeeping of what it owes its callers, without a thread or a cluster.
@Suite struct PendingRequestsTests {
    /// Records every reply given, by name.
    final class Answers: Sendable {
        private let given = Mutex<[String]>([])
        var all: [String] { given.withLock { $0 } }

        func reply<T>(_ name: String) -> ReplicaReply<T> {
            { [self] result in
                let outcome: String
                switch result {
                case .success: outcome = "ok"
                case let .failure(error): outcome = "\(error)"
                }
                given.withLock { $0.append("\(name): \(outcome)") }
            }
        }
    }

    let start = ContinuousClock.now

    func waiting<T>(_ answers: Answers, _ name: String, term: Term = 2, after seconds: Int = 5) -> PendingRequests<Applied>.Waiting<T> {
        .init(term: term, deadline: start + .seconds(seconds), reply: answers.reply(name))
    }

    @Test func aProposalIsSettledByTheTermOfTheEntryAppliedAtItsIndex() throws {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        requests.propose(at: 7, waiting(answers, "seven"))
        requests.propose(at: 8, waiting(answers, "eight"))
        #expect(requests.proposalCount == 2)

        guard case .applied? = requests.proposalApplied(at: 7, term: 2) else { Issue.record("index 7 of term 2 is its own entry"); return }
        guard case .superseded? = requests.proposalApplied(at: 8, term: 3) else { Issue.record("index 8 of term 3 is another leader's"); return }
        #expect(requests.proposalApplied(at: 7, term: 2) == nil, "answered once")
        #expect(requests.proposalCount == 0)
    }

    @Test func readsAreServedOnceConfirmedAndApplied() {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        let first = requests.read(waiting(answers, "first"), now: start)
        let second = requests.read(waiting(answers, "second"), now: start)
        #expect(first != second, "each read carries its own context")

        // Nothing is served before its round confirms it, whatever is applied.
        #expect(requests.readsServed(upTo: 100).isEmpty)
        requests.confirm([ReadState(index: 10, context: first), ReadState(index: 12, context: second), ReadState(index: 1, context: [9, 9])])
        #expect(requests.readsServed(upTo: 9).isEmpty)
        requests.readsServed(upTo: 11).forEach { $0(.success(())) }
        #expect(answers.all == ["first: ok"])
        requests.readsServed(upTo: 12).forEach { $0(.success(())) }
        #expect(answers.all == ["first: ok", "second: ok"])
    }

    @Test func expiryEndsWhatWaitedTooLongButKeepsConfirmedReads() {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        requests.propose(at: 3, waiting(answers, "late proposal", after: 1))
        requests.propose(at: 4, waiting(answers, "proposal in time", after: 9))
        let confirmed = requests.read(waiting(answers, "confirmed read", after: 1), now: start)
        _ = requests.read(waiting(answers, "unconfirmed read", after: 1), now: start)
        requests.changeMembership(at: 5, waiting(answers, "late change", after: 1))
        requests.confirm([ReadState(index: 20, context: confirmed)])

        let expired = requests.expire(now: start + .seconds(2))
        #expect(expired.proposals.count == 1)
        #expect(expired.reads.count == 1)
        #expect(expired.membershipChanges.count == 1)
        expired.fail(.timedOut)
        #expect(Set(answers.all) == ["late proposal: timedOut", "unconfirmed read: timedOut", "late change: timedOut"])
        #expect(requests.proposalCount == 1)
        #expect(requests.readsServed(upTo: 20).count == 1, "a confirmed read only waits for its index")
    }

    /// `expire` looks through the tables only once the earliest deadline has passed; each
    /// later deadline is still met, whatever was answered in between.
    @Test func eachDeadlineIsMetWhenItsTimeComesAndNotBefore() {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        requests.propose(at: 3, waiting(answers, "first", after: 1))
        requests.propose(at: 4, waiting(answers, "second", after: 5))
        requests.changeMembership(at: 6, waiting(answers, "change", after: 7))
        #expect(requests.expire(now: start + .milliseconds(500)).isEmpty)
        requests.expire(now: start + .seconds(2)).fail(.timedOut)
        #expect(answers.all == ["first: timedOut"])
        #expect(requests.expire(now: start + .seconds(4)).isEmpty)
        _ = requests.read(waiting(answers, "read", after: 3), now: start)
        requests.expire(now: start + .milliseconds(3_500)).fail(.timedOut)
        #expect(answers.all == ["first: timedOut", "read: timedOut"])
        requests.expire(now: start + .seconds(6)).fail(.timedOut)
        #expect(answers.all == ["first: timedOut", "read: timedOut", "second: timedOut"])
        // The change was answered before its deadline: nothing is left to expire.
        _ = requests.membershipApplied(at: 6, term: 2)
        #expect(requests.expire(now: start + .seconds(8)).isEmpty)
        #expect(requests.proposalCount == 0)
    }

    @Test func removeAllHandsBackEveryRequestOnce() {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        requests.propose(at: 1, waiting(answers, "proposal"))
        let confirmed = requests.read(waiting(answers, "confirmed read"), now: start)
        _ = requests.read(waiting(answers, "read"), now: start)
        requests.confirm([ReadState(index: 5, context: confirmed)])
        requests.changeMembership(at: 2, waiting(answers, "change"))

        let all = requests.removeAll()
        all.fail(.stopped)
        #expect(Set(answers.all) == ["proposal: stopped", "confirmed read: stopped", "read: stopped", "change: stopped"])
        #expect(requests.removeAll().isEmpty)
        #expect(requests.membershipApplied(at: 2, term: 2) == nil)
        // Contexts stay unique across the reset: a late confirmation of an old read finds nothing.
        let next = requests.read(waiting(answers, "next"), now: start)
        #expect(next != confirmed)
    }

    @Test func unconfirmedReadsAreAskedAgainOncePerPatience() {
        let answers = Answers()
        var requests = PendingRequests<Applied>()
        let old = requests.read(waiting(answers, "old"), now: start)
        let confirmed = requests.read(waiting(answers, "confirmed"), now: start)
        let recent = requests.read(waiting(answers, "recent"), now: start + .milliseconds(250))
        requests.confirm([ReadState(index: 3, context: confirmed)])

        let cutoff = start + .milliseconds(100)
        #expect(requests.readsToAskAgain(askedBefore: cutoff, now: start + .milliseconds(400)) == [old])
        // Asked again at 400 ms: not again until that is past the cutoff, when both are due.
        #expect(requests.readsToAskAgain(askedBefore: start + .milliseconds(300), now: start + .milliseconds(700)).map { $0 } == [recent])
        #expect(Set(requests.readsToAskAgain(askedBefore: start + .milliseconds(700), now: start + .seconds(1))) == [old, recent])
        // Asking again changes nothing else: the read is still answered once, by its context.
        requests.confirm([ReadState(index: 4, context: old), ReadState(index: 4, context: old)])
        requests.readsServed(upTo: 4).forEach { $0(.success(())) }
        #expect(answers.all == ["confirmed: ok", "old: ok"])
    }
}
