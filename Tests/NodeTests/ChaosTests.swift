import Foundation
import Testing

/// The fault-injection suite (`chorus-lab chaos`): five nodes in network namespaces, a
/// recorded workload, random faults, a checked history. `CHORUS_CHAOS_SECONDS` sets the length
/// of the run.
///
/// `scripts/test.sh` runs it beside the real-process suites, with a lower CPU priority (`nice`):
/// what it checks holds however little CPU its workload gets, and at the same priority its
/// workload, which sends as fast as it is answered, took so much of both cores that a cluster
/// test's client was held off the CPU for 9 s (long enough for its connection to be given up,
/// and a subscription limit test to wait forever).
@Suite(.serialized) struct FaultInjectionTests {
    static var chaosSeconds: Int {
        ProcessInfo.processInfo.environment["CHORUS_CHAOS_SECONDS"].flatMap(Int.init) ?? 120
    }

    @Test(.enabled(if: getuid() == 0, "the fault-injection suite creates network namespaces and needs root"))
    func faultInjectionRunKeepsEveryGuarantee() async throws {
        let run = try await runLab(["chaos", "--seconds", "\(Self.chaosSeconds)"])
        // What the run covered, in the log whether it passes or not: it shares the CPU with
        // other steps in CI, and its workload sends as fast as it is answered.
        for line in run.output.split(separator: "\n") where line.hasPrefix("operations:") || line.hasPrefix("faults injected:") {
            print("the fault-injection run: \(line)")
        }
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("no violations"), "\(run.output)")
        #expect(run.output.contains(" replicas agree"), "\(run.output)")
    }
}

/// The fault-injection suite's checker catches each bug planted for it. A catch needs the
/// workload's operations to reach the bug in a short run, so `scripts/test.sh` runs these after
/// the guarantees run and the real-process suites, beside the browser tests only (which leave
/// them more than a core), at a lower priority.
@Suite(.serialized) struct PlantedBugTests {
    /// With a node that acknowledges sends before they commit, a short run must find the
    /// consequences: acknowledged messages lost, stored under another id than acknowledged,
    /// or missing from reads that began after the acknowledgement. The faults are leader
    /// isolations: an isolated leader keeps answering until check-quorum demotes it, and what
    /// it acknowledged then is lost whatever the timing (a random fault mix can spare the bug
    /// when every partition happens to leave the leader with a majority). 45 s, not the 12 s of
    /// the runs below: a loss needs a client's send to reach the leader in the moment between its
    /// isolation and its demotion, and a 20 s run's two isolations once had none (CI,
    /// 2026-12-07); this bug is the only one of the suite that a quiet moment can hide.
    @Test(.enabled(if: getuid() == 0, "the fault-injection suite creates network namespaces and needs root"))
    func checkerCatchesAPlantedBug() async throws {
        let run = try await runLab(["chaos", "--seconds", "45", "--plant-bug", "ack-on-append", "--seed", "11", "--faults", "isolate-leader"])
        #expect(run.status == 1, "\(run.output)")
        let caught = ["acknowledged send lost", "acknowledged under another id", "stale read"].filter { run.output.contains($0) }
        #expect(!caught.isEmpty, "\(run.output)")
        #expect(run.output.contains("seed 11"), "\(run.output)")
    }

    /// Each rule the checker added for this wave fires on a bug planted for it, under two
    /// seeds and two fault mixes each: a delete answered but never made (`skip-deletes`), a
    /// delete that also removes a message nobody deleted (`delete-extra`), and reads served
    /// from a node's projections without the ReadIndex barrier (`local-reads`, stale while the
    /// node is cut off from the leader and the client still reaches it). 12 s each: a planted
    /// delete bug shows in the first deletes, faults or not, and the stale reads in the first
    /// isolation, 3 s in; at 12 s every case was caught as its rule in each of three runs (by
    /// hand, the suite, CI; 2026-12-07). They were 25 s: 194 s of CI for the same six catches.
    @Test(.enabled(if: getuid() == 0, "the fault-injection suite creates network namespaces and needs root"),
          arguments: [
              ("skip-deletes", "delete did not stick", 21, "kill-random,partition-halves"),
              ("skip-deletes", "delete did not stick", 22, "isolate-leader,loss"),
              ("delete-extra", "shown message lost", 23, "kill-leader,bridge"),
              ("delete-extra", "shown message lost", 24, "pause-leader,partition-halves"),
              ("local-reads", "stale undelivered read", 25, "isolate-leader"),
              ("local-reads", "stale undelivered read", 26, "isolate-leader,partition-halves"),
          ] as [(String, String, Int, String)])
    func eachCheckerRuleCatchesItsPlantedBug(bug: String, rule: String, seed: Int, faults: String) async throws {
        let run = try await runLab(["chaos", "--seconds", "12", "--plant-bug", bug, "--seed", "\(seed)", "--faults", faults])
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("✗ \(rule):"), "\(bug) was not caught as '\(rule)':\n\(run.output)")
    }
}
