import Foundation
import Logging
import LogStore
import Projections
import Raft
@testable import Replica
import Synchronization
import Testing
@testable import Node

/// The production replica loop (`Replica.Loop`, the code every node runs) in a deterministic
/// simulation: three replicas in one process, turned one at a time on one manual clock, a
/// simulated network that delays, drops, duplicates and reorders messages, congests and cuts
/// links, and crashes that drop a replica mid-flight (nothing of it runs on: no last write,
/// no answers, as SIGKILL) and start it again from its log. Clients propose unique commands
/// to whoever they think leads.
///
/// The logs are real LMDB ones, or a simulated disk (`SimulatedDisk`) that is slow, fails
/// with an I/O error or a full file system (the node must stop, saying which) and loses power
/// mid-write (the write is then on the platter or not).
///
/// Checked at the end, after the faults stop: every replica applied the same log; every
/// acknowledged command is in it exactly once, at the index its caller was told; no command
/// twice; a linearizable read, on the leader or a follower, sees every command acknowledged
/// before it was asked; no term had two leaders and no node voted twice in a term; the
/// cluster takes a new command within a few election timeouts; and the same seed gives the
/// same run, entry for entry. Planted bugs, each caught: an acknowledgement on append (before
/// commit), a commit on one voter, entries applied before they commit, a disk that skips its
/// syncs, a vote that is never written.
///
/// Every 64 entries each replica takes a snapshot (off its loop, at a moment the seed
/// decides) and compacts its log to 16 entries behind it: a replica that was down longer is
/// sent the leader's snapshot file and installs it, and a restarted one starts from its own.
///
/// Operators change the membership as they would: start a node that joins empty, add it as
/// a learner, promote it once it has caught up, remove a voter that is not the leader (3 to
/// 5 voters); a node the configuration no longer holds is shut down for good.
///
/// The machine is a ledger of a few lines, or the chat projections themselves (`ChatMachine`
/// on real LMDB tables): accounts, sessions and sends under one client id, sent again after
/// an unknown outcome; every replica must hold the same messages and the same digest.
///
/// With the chat projections, their own files fail too (`ProjectionsDisk`): a write commit
/// under `state/` meets a full file system or an I/O error; the node must stop saying which,
/// and its next start rebuilds the projections from the log's snapshot and applies the log
/// again, to the same digest as every other replica. The Raft core's simulator (`Tests/RaftTests/Simulation`) handles each ready
/// with the loop's own `ReadyHandling`; this one runs the whole loop.
///
/// Each run is a second or less of CPU without a suspension point, so it runs on a thread of
/// its own (`simulate`): on the test runner's two cooperative threads it held off every async
/// test of the process as long (a client's retry timer fired 13 s late). As many run at once
/// as there are cores: CI runs this suite in a step of its own, where one at a time left a
/// core idle (46 s, 46 s of CPU).
@Suite struct ReplicaSimulationTests {
    typealias Result = SimulationResult
    typealias Options = SimulationOptions
    typealias Disks = SimulatedDisks
    typealias Ledger = ReplicaLoopTests.Ledger

    /// Runs a simulation on a thread of its own and waits for it without holding a
    /// cooperative thread.
    static func simulate<Machine: SimulatedMachine>(_ machine: Machine.Type = Ledger.self, seed: UInt64, _ options: Options = Options()) async -> Result {
        await withCheckedContinuation { continuation in
            Thread {
                // Waited for on this thread, never on a cooperative one.
                cores.wait()
                defer { cores.signal() }
                continuation.resume(returning: ReplicaSimulation<Machine>.run(seed: seed, options))
            }.start()
        }
    }

    /// One run per core at a time: the runs of every test of the suite share them.
    static let cores = DispatchSemaphore(value: max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// What the checker finds wrong with a run; empty when nothing is.
    static func violations(_ result: Result) -> [String] {
        var found: [String] = result.problems
        let logs = result.logs.sorted { $0.key < $1.key }
        guard let reference = logs.first?.value else { return found + ["no replica left"] }
        for (id, log) in logs where log != reference {
            let first = Array(zip(log, reference)).firstIndex { $0 != $1 } ?? min(log.count, reference.count)
            let mine = first < log.count ? log[first] : "nothing", theirs = first < reference.count ? reference[first] : "nothing"
            found.append("replica \(id) applied \(log.count) commands, replica \(logs[0].key) \(reference.count): the logs differ from command \(first) on (\(mine), \(theirs))")
        }
        let applied = Set(reference)
        let counts = Dictionary(reference.map { ($0.split(separator: ":", maxSplits: 1).last.map(String.init) ?? $0, 1) }, uniquingKeysWith: +)
        for (command, count) in counts.sorted(by: { $0.key < $1.key }) where count > 1 { found.append("\(command) applied \(count) times") }
        for (command, output) in result.acknowledged.sorted(by: { $0.key < $1.key }) where !applied.contains(output) {
            found.append("acknowledged \(command) as \(output), which is not in the log")
        }
        found += result.staleReads
        return found
    }

    /// Seeds of every run: 20 on simulated disks (under a second each), 12 on LMDB (a second
    /// and a half) and 8 for the chat projections; `CHORUS_REPLICA_SIM_SEEDS` sets how many
    /// for all three, `CHORUS_REPLICA_SIM_SEED` runs one.
    static func seeds(standard: UInt64) -> [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let one = environment["CHORUS_REPLICA_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        return Array(1...max(1, environment["CHORUS_REPLICA_SIM_SEEDS"].flatMap(UInt64.init) ?? standard))
    }

    static var seeds: [UInt64] { seeds(standard: 20) }
    static var lmdbSeeds: [UInt64] { seeds(standard: 12) }
    static var chatSeeds: [UInt64] { seeds(standard: 8) }

    static func summary(_ result: Result) -> String {
        "\(result.acknowledged.count) of \(result.proposed) commands acknowledged, \(result.logs.values.first?.count ?? 0) applied, \(result.reads) reads, "
            + "\(result.crashes) crashes, \(result.snapshotsTaken) snapshots started, \(result.snapshotsSent) snapshot files sent, "
            + "\(result.membershipChanges) membership changes (voters \(result.voters))"
            + (result.writes > 0 ? ", \(result.writes) writes, disk faults \(result.diskFaults.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })" : "")
    }

    @Test(arguments: lmdbSeeds)
    func theProductionLoopKeepsEveryAcknowledgedCommandUnderFaults(seed: UInt64) async {
        let result = await Self.simulate(seed: seed)
        let found = Self.violations(result)
        print("seed \(seed): \(Self.summary(result))")
        #expect(found.isEmpty, "seed \(seed): \(found.prefix(5))")
        // The run did something: commands committed, a replica crashed, reads were served.
        #expect(result.acknowledged.count > 50, "seed \(seed): only \(result.acknowledged.count) of \(result.proposed) commands acknowledged")
        #expect(result.crashes > 0, "seed \(seed): no crash")
        #expect(result.reads > 10, "seed \(seed): only \(result.reads) reads served")
    }

    /// The same, on simulated disks that are slow (0.1–2 ms a synced write, sometimes 30 ms),
    /// fail (an I/O error, a full file system: the node stops saying which, and is started
    /// again once "fixed") and lose power mid-write (the write is on the platter or not).
    @Test(arguments: seeds)
    func onFailingDisksNothingAcknowledgedIsLost(seed: UInt64) async {
        let result = await Self.simulate(seed: seed, Options(disks: .faulty))
        let found = Self.violations(result)
        print("seed \(seed), failing disks: \(Self.summary(result))")
        #expect(found.isEmpty, "seed \(seed): \(found.prefix(5))")
        #expect(result.acknowledged.count > 50, "seed \(seed): only \(result.acknowledged.count) of \(result.proposed) commands acknowledged")
        #expect(result.diskFaults.values.reduce(0, +) > 0, "seed \(seed): no disk fault in \(result.writes) writes")
    }

    /// The chat projections (`ChatMachine`, real LMDB tables) in place of the ledger, on
    /// failing disks, the projections' own files failing too: sends between two accounts under one client id, sent again after an
    /// unknown outcome (exactly once by request id). Every replica holds the same messages and
    /// the same digest of every table, each acknowledged send once.
    @Test(arguments: chatSeeds)
    func theChatProjectionsAgreeAndKeepEveryAcknowledgedSend(seed: UInt64) async {
        let result = await Self.simulate(ChatMachine.self, seed: seed, Options(disks: .faulty))
        let found = Self.violations(result)
        print("seed \(seed), chat: \(Self.summary(result))")
        #expect(found.isEmpty, "seed \(seed): \(found.prefix(5))")
        #expect(result.acknowledged.count > 50, "seed \(seed): only \(result.acknowledged.count) of \(result.proposed) sends acknowledged")
        #expect(result.logs.values.allSatisfy { $0.last?.hasPrefix("digest:") == true }, "seed \(seed): no digest")
    }


    /// A follower whose machine refuses the leader's snapshot (a build that meets a newer
    /// cluster version's) stops with the machine's refusal, the way it stops at an entry it
    /// cannot apply, not as a node whose disk failed (which an operator would fix and restart
    /// into the same refusal); the others go on. The first seeds in which node 3 is sent a
    /// snapshot are enough.
    @Test func aSnapshotTheMachineRefusesStopsTheNodeWithTheRefusal() async {
        var stopped: [String] = []
        for seed in UInt64(1)...20 where stopped.isEmpty {
            let result = await Self.simulate(seed: seed, Options(membership: false, refusesSnapshots: 3))
            let found = Self.violations(result)
            #expect(found.isEmpty, "seed \(seed): \(found.prefix(5))")
            stopped += result.refusedSnapshots
        }
        #expect(stopped.first?.hasPrefix("replica 3: the snapshot at ") == true, "\(stopped)")
    }

    /// Over the seeds of one CI run, the cluster changed its membership, sent snapshots and
    /// met every kind of disk fault: the runs above exercised what they claim to.
    @Test func theRunsReachMembershipSnapshotsAndEveryDiskFault() async {
        var changes = 0, sent = 0, faults: Set<String> = [], grew = false
        for seed in 1...5 as ClosedRange<UInt64> {
            let result = await Self.simulate(seed: seed, Options(disks: .faulty))
            changes += result.membershipChanges
            sent += result.snapshotsSent
            faults.formUnion(result.diskFaults.keys)
            grew = grew || result.voters.count > 3 || result.voters.contains { $0 > 3 }
        }
        #expect(changes > 5 && grew, "\(changes) membership changes in seeds 1–5")
        #expect(sent > 0, "no snapshot sent in seeds 1–5")
        #expect(faults == ["full", "ioError", "powerLoss"], "disk faults met: \(faults.sorted())")
        // The chat projections' own files fail as well, both ways, and the nodes they stop
        // come back to the same digest (the seeds' checks above).
        var projections: Set<String> = []
        for seed in 1...3 as ClosedRange<UInt64> {
            let result = await Self.simulate(ChatMachine.self, seed: seed, Options(disks: .faulty))
            #expect(Self.violations(result).isEmpty, "chat seed \(seed): \(Self.violations(result).prefix(3))")
            projections.formUnion(result.diskFaults.keys.filter { $0.hasPrefix("projections") })
        }
        #if DEBUG
        #expect(projections == ["projections full", "projections ioError"], "projection faults met: \(projections.sorted())")
        #endif
    }

    /// The same seed gives the same run, with the ledger on LMDB and the chat projections on
    /// failing simulated disks (their faults, latencies and crashes drawn from the seed too).
    @Test func theSameSeedRunsTheSameWay() async {
        let first = await Self.simulate(seed: 7, Options(seconds: 6))
        let second = await Self.simulate(seed: 7, Options(seconds: 6))
        #expect(first == second, "seed 7 ran two ways: \(first.acknowledged.count) and \(second.acknowledged.count) acknowledged")
        let chat = await Self.simulate(ChatMachine.self, seed: 3, Options(seconds: 6, disks: .faulty))
        let again = await Self.simulate(ChatMachine.self, seed: 3, Options(seconds: 6, disks: .faulty))
        #expect(chat == again && !chat.diskFaults.isEmpty, "chat seed 3 ran two ways: \(chat.acknowledged.count) and \(again.acknowledged.count) acknowledged")
    }

    /// The first seed of 1…`seeds` whose run the checker finds wrong, with what it found.
    static func firstCaught<Machine: SimulatedMachine>(_ machine: Machine.Type, seeds: Int, _ options: Options) async -> (seed: UInt64, found: [String])? {
        for seed in 1...UInt64(seeds) {
            let found = violations(await simulate(machine, seed: seed, options))
            if !found.isEmpty { return (seed, found) }
        }
        return nil
    }

    /// Runs the search for one planted bug and says which seed caught it, and how. The seed
    /// that catches it must find one of `signature` (what that bug does), and must run clean
    /// without the bug: it is the bug that was caught, not something else.
    static func expectCaught<Machine: SimulatedMachine>(_ name: String, in machine: Machine.Type = Ledger.self, seeds: Int, _ options: Options, signature: [String],
                                                        sourceLocation: SourceLocation = #_sourceLocation) async -> [String] {
        let caught = await firstCaught(machine, seeds: seeds, options)
        guard let caught else {
            Issue.record("\(name) went unnoticed in seeds 1–\(seeds)", sourceLocation: sourceLocation)
            return []
        }
        print("\(name) caught by seed \(caught.seed): \(caught.found.count) violations, the first: \(caught.found[0])")
        #expect(caught.found.contains { found in signature.contains { found.contains($0) } }, "\(name), seed \(caught.seed): \(caught.found.prefix(3))", sourceLocation: sourceLocation)
        var clean = options
        clean.acknowledgeOnAppend = false
        clean.plant = { _ in }
        clean.disks.liesAboutSync = false
        clean.disks.forgetsVotes = false
        let without = violations(await simulate(machine, seed: caught.seed, clean))
        #expect(without.isEmpty, "seed \(caught.seed) without \(name): \(without.prefix(3))", sourceLocation: sourceLocation)
        return caught.found
    }

    /// What losing acknowledged commands looks like to the checker.
    static let lostWrites = ["which is not in the log", "the logs differ", "missed"]

    /// Acknowledging a command once the leader appended it, before a majority holds it: a
    /// leader cut off or killed with such commands loses them.
    @Test func acknowledgingBeforeCommitIsCaught() async {
        _ = await Self.expectCaught("acknowledging on append", seeds: 10, Options(acknowledgeOnAppend: true), signature: Self.lostWrites)
        // The same bug as the node plants it for the fault-injection suite: a send answered
        // once appended, in the chat projections.
        _ = await Self.expectCaught("acknowledging a send on append", in: ChatMachine.self, seeds: 10, Options(disks: .faulty, acknowledgeOnAppend: true),
                                    signature: Self.lostWrites)
    }

    /// A disk that says it synced and did not (a drive's volatile cache, or a node that skips
    /// its fsync): after a crash the log lacks what the node promised.
    @Test func aSkippedSyncIsCaught() async {
        _ = await Self.expectCaught("a skipped sync", seeds: 10, Options(disks: Disks(simulated: true, liesAboutSync: true)),
                                    signature: Self.lostWrites + ["had leaders", "voted for", "cannot start"])
    }

    /// A hard state written without its vote: a node that restarts within an election votes
    /// twice in one term, and two leaders can share it. Contested elections are rare with
    /// pre-vote and three nodes; five and a congested network make them common enough.
    @Test func aForgottenVoteIsCaught() async {
        _ = await Self.expectCaught("a forgotten vote", seeds: 20, Options(nodes: 5, disks: Disks(simulated: true, forgetsVotes: true)), signature: ["voted for", "had leaders"])
    }

    #if DEBUG
    /// A commit rule broken in the core the loop drives (test builds only: commit once one
    /// voter holds an entry). The core's subtler planted bugs need the exact sequences of
    /// `SafetyBugScenarios`, which this simulator's random faults do not aim at.
    @Test func aCommitOnOneVoterIsCaught() async {
        _ = await Self.expectCaught("a commit on one voter", seeds: 20, Options(seconds: 2, plant: { $0.unsafeCommitQuorum = 1 }), signature: Self.lostWrites)
    }

    /// Entries applied before they commit (planted in the core): the node's own invariants
    /// stop it at the first such ready, before anything is applied, and the run says so.
    @Test func applyingBeforeCommitIsCaught() async {
        _ = await Self.expectCaught("applying before commit", seeds: 5, Options(seconds: 4, plant: { $0.plantedBugs.insert(.applyBeforeCommit) }),
                                    signature: ["invariant broken: only committed entries are applied"])
    }
    #endif
}
