import Testing
@testable import Node

/// The peer transport's two small mechanisms: which stream's end counts as a peer's loss, and
/// how a failed link is started again.
@Suite struct PeerTransportTests {
    /// The quick-failover bug: an old stream from the leader torn down after its replacement
    /// already delivers must not be taken for the leader's loss (that dropped the follower's
    /// lease and let a server cut off from the leader depose it).
    @Test func onlyThePeersLastStreamEndingCountsAsItsLoss() {
        let streams = InboundStreams()
        streams.opened(1)
        streams.opened(1)  // the replacement, delivering before the old one is torn down
        #expect(streams.closed(1) == false)
        #expect(streams.count(1) == 1)
        #expect(streams.closed(1) == true, "the leader's current stream ended and no newer one is open")
        #expect(streams.count(1) == 0)
    }

    @Test func streamsOfDifferentPeersAreCountedApart() {
        let streams = InboundStreams()
        streams.opened(1)
        streams.opened(2)
        #expect(streams.closed(2) == true)
        #expect(streams.count(1) == 1)
        // A close never seen opened (refused before its sender was known) counts as the last.
        #expect(streams.closed(3) == true)
        #expect(streams.count(3) == 0)
    }

    @Test func aFailingLinkWaitsLongerEachTimeUpToALimitAndStartsOverOnceItRan() {
        var restarts = LinkRestarts()
        let waits = (0..<9).map { _ in restarts.failed() }
        #expect(waits == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                          .milliseconds(3200), .seconds(5), .seconds(5), .seconds(5)])
        restarts.succeeded()
        #expect(restarts.failed() == .milliseconds(100))
    }
}
