@testable import Node
import Testing

/// Health checks share one probe per interval (`ReadinessCache`), at any rate of checks.
@Suite struct ReadinessCacheTests {
    let start = ContinuousClock.now
    let ready = Readiness(problems: [])
    let leaderless = Readiness(problems: ["no leader known"])

    @Test func theFirstCheckProbesAndLaterOnesShareItsAnswerUntilItIsOld() {
        var cache = ReadinessCache(maxAge: .milliseconds(100), probeTimeout: .seconds(2))
        #expect(cache.ask(now: start) == .probe)
        cache.found(ready, at: start + .milliseconds(5))
        #expect(cache.ask(now: start + .milliseconds(50)) == .answer(ready))
        #expect(cache.ask(now: start + .milliseconds(104)) == .answer(ready))
        // Old: the next caller probes, and what it finds is the answer from then on.
        #expect(cache.ask(now: start + .milliseconds(105)) == .probe)
        cache.found(leaderless, at: start + .milliseconds(110))
        #expect(cache.ask(now: start + .milliseconds(120)) == .answer(leaderless))
    }

    @Test func whileAProbeIsUnderWayOthersTakeTheLastAnswerHoweverOld() {
        var cache = ReadinessCache(maxAge: .milliseconds(100), probeTimeout: .seconds(2))
        #expect(cache.ask(now: start) == .probe)
        // Before anything was found, every caller probes: there is nothing to answer with.
        #expect(cache.ask(now: start + .milliseconds(1)) == .probe)
        cache.found(ready, at: start + .milliseconds(2))
        // After a quiet spell, one probe; the callers meanwhile get the old answer.
        #expect(cache.ask(now: start + .seconds(10)) == .probe)
        #expect(cache.ask(now: start + .seconds(10) + .milliseconds(300)) == .answer(ready), "one probe at a time")
        #expect(cache.ask(now: start + .seconds(11) + .milliseconds(900)) == .answer(ready))
        // A probe that never said what it found is not waited on for ever.
        #expect(cache.ask(now: start + .seconds(12)) == .probe)
        cache.found(leaderless, at: start + .seconds(12) + .milliseconds(5))
        #expect(cache.ask(now: start + .seconds(12) + .milliseconds(50)) == .answer(leaderless))
    }
}
