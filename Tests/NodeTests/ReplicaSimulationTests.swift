import Foundation
import Logging
import LogStore
import Projections
import Raft
import Synchronization
import Testing
@testable import Node

/// The production replica loop (`Replica.Loop`, the code every node runs) in a deterministic
/// simulation: three replicas over real LMDB logs in one process, turned one at a time on one
/// manual clock, a simulated network that delays, drops, duplicates and reorders messages and
/// cuts links, and crashes that drop a replica mid-flight (nothing of it runs on: no last
/// write, no answers, as SIGKILL) and start it again from its log. Clients propose unique
/// commands to whoever they think leads.
///
/// Checked at the end, after the faults stop: every replica applied the same log; every
/// acknowledged command is in it exactly once, at the index its caller was told; no command
/// twice; a linearizable read, on the leader or a follower, sees every command acknowledged
/// before it was asked; the cluster takes a new command within a few election timeouts; and
/// the same seed gives the same run, entry for entry. A bug planted in the loop's
/// acknowledgement path (acknowledge on append, before commit) and a commit rule broken in the
/// core are caught.
///
/// Not yet here (issue 34): the chat machine, membership changes, snapshots and a simulated
/// disk (torn writes, fsync errors, a full disk); the deterministic Raft simulator
/// (`Tests/RaftTests/Simulation`) still has its own copy of the loop for those.
///
/// Each run is seconds of CPU without a suspension point, so it runs on a thread of its own,
/// one at a time (`simulate`): on the test runner's two cooperative threads it held off every
/// async test of the process as long (a client's retry timer fired 13 s late).
@Suite(.serialized) struct ReplicaSimulationTests {
    typealias Ledger = ReplicaLoopTests.Ledger

    /// The run depends on its seed and nothing else.
    typealias Random = SplitMix

    /// Messages in flight, each with the simulated instant it arrives; links that are cut.
    /// The loops hand messages here from their turns, on the simulation's own thread.
    final class Network: MessageSender {
        struct InFlight {
            var arrives: ContinuousClock.Instant
            var order: UInt64
            var message: Message
        }

        private struct State {
            var random: Random
            var inFlight: [InFlight] = []
            var sent: UInt64 = 0
            /// Unordered pairs that cannot talk.
            var cut: Set<[NodeID]> = []
            var lossy = false
        }

        private let state: Mutex<State>
        let clock: ManualClock

        init(seed: UInt64, clock: ManualClock) {
            state = Mutex(State(random: Random(state: seed ^ 0x6E65_7477_6F72_6B)))
            self.clock = clock
        }

        func send(_ messages: [Message]) {
            let now = clock.now
            state.withLock { state in
                for message in messages {
                    guard !state.cut.contains([min(message.from, message.to), max(message.from, message.to)]) else { continue }
                    if state.lossy && state.random.chance(0.05) { continue }
                    let copies = state.lossy && state.random.chance(0.02) ? 2 : 1
                    for _ in 0..<copies {
                        // 0.2–3 ms, sometimes 20 ms: later messages may overtake earlier ones.
                        let micros = state.random.chance(0.03) ? 20_000 : 200 + state.random.below(2_800)
                        state.sent += 1
                        state.inFlight.append(InFlight(arrives: now + .microseconds(micros), order: state.sent, message: message))
                    }
                }
            }
        }

        /// The messages due by now, in arrival order, grouped by recipient.
        func due() -> [(NodeID, [Message])] {
            let now = clock.now
            return state.withLock { state in
                let arrived = state.inFlight.filter { $0.arrives <= now }.sorted { ($0.arrives, $0.order) < ($1.arrives, $1.order) }
                guard !arrived.isEmpty else { return [] }
                state.inFlight.removeAll { $0.arrives <= now }
                var byNode: [NodeID: [Message]] = [:]
                for flight in arrived where !state.cut.contains([min(flight.message.from, flight.message.to), max(flight.message.from, flight.message.to)]) {
                    byNode[flight.message.to, default: []].append(flight.message)
                }
                return byNode.sorted { $0.key < $1.key }
            }
        }

        /// Cuts every link between `side` and the others.
        func partition(_ side: Set<NodeID>, from all: [NodeID]) {
            state.withLock { state in
                state.cut = []
                for a in side { for b in all where !side.contains(b) { state.cut.insert([min(a, b), max(a, b)]) } }
            }
        }

        func heal() { state.withLock { $0.cut = [] } }
        func setLossy(_ lossy: Bool) { state.withLock { $0.lossy = lossy } }
        /// Messages to a node that crashed die with its connections.
        func drop(to node: NodeID) { state.withLock { $0.inFlight.removeAll { $0.message.to == node } } }
    }

    /// What the clients saw: commands acknowledged (with the output), failed, or unanswered.
    final class Outcomes: Sendable {
        private let state = Mutex<(acknowledged: [String: String], failed: Set<String>, reads: Int, staleReads: [String])>(([:], [], 0, []))
        func acknowledged(_ command: String, _ output: String) { state.withLock { $0.acknowledged[command] = output } }
        func failed(_ command: String) { state.withLock { _ = $0.failed.insert(command) } }
        var acknowledged: [String: String] { state.withLock { $0.acknowledged } }
        func read(stale: String?) {
            state.withLock { state in
                state.reads += 1
                if let stale { state.staleReads.append(stale) }
            }
        }
        var reads: (served: Int, stale: [String]) { state.withLock { ($0.reads, $0.staleReads) } }
    }

    /// What one run left: each replica's applied log ("index:command", as the callers'
    /// outputs say) and the acknowledged commands.
    struct Result: Equatable, Sendable {
        /// What went wrong beside the checker's rules: a loop that stopped by itself, no
        /// command committed after the faults.
        var problems: [String] = []
        var logs: [NodeID: [String]]
        var acknowledged: [String: String]
        /// Linearizable reads served, and those that missed a command acknowledged before
        /// they were asked.
        var reads: Int
        var staleReads: [String]
        var crashes: Int
        var proposed: Int
    }

    /// One run of `seconds` simulated seconds of faults, then a quiet second and one last
    /// command. `acknowledgeOnAppend` plants the bug.
    static func run(seed: UInt64, seconds: Int = 12, acknowledgeOnAppend: Bool = false, plant: @escaping (inout RaftOptions) -> Void = { _ in }) throws -> Result {
        var problems: [String] = []
        var cluster = ReplicaLoopTests.Cluster(size: 3)
        cluster.proposalTimeout = .seconds(2)
        // A crash here is the loop dropped, not the machine: what LMDB wrote is in the page
        // cache either way, so the logs may as well live in memory, where an fsync is free
        // (where /dev/shm has room to spare above the loop's free-space floor).
        if let free = StorageFailure.space(of: "/dev/shm")?.available, free > 1 << 30 {
            cluster.directory = "/dev/shm/chorus-replica-sim-\(UUID().uuidString)"
        }
        defer { cluster.remove() }
        let clock = ManualClock()
        let network = Network(seed: seed, clock: clock)
        var random = Random(state: seed)
        let ids: [NodeID] = [1, 2, 3]
        var machines: [NodeID: Ledger] = [:]
        var replicas: [NodeID: Replica<Ledger>] = [:]
        var down: [NodeID: ContinuousClock.Instant] = [:]
        let outcomes = Outcomes()
        var crashes = 0
        var proposed = 0

        func start(_ id: NodeID) throws {
            let machine = Ledger()
            machines[id] = machine
            replicas[id] = try cluster.replica(id, machine, network: network, clock: clock, seed: seed &* 31 &+ id &+ UInt64(crashes) &* 1_000,
                                               acknowledgeOnAppend: acknowledgeOnAppend, plant: plant)
        }
        for id in ids { try start(id) }

        func propose(_ command: String) {
            // The client asks whoever says it leads, or anyone.
            let leading = ids.filter { replicas[$0]?.isLeader == true }
            let candidates = leading.isEmpty ? ids.filter { replicas[$0] != nil } : leading
            guard !candidates.isEmpty, let replica = replicas[candidates[random.below(candidates.count)]] else { return }
            proposed += 1
            replica.propose(Array(command.utf8)) { result in
                switch result {
                case let .success(output): outcomes.acknowledged(command, output)
                case .failure: outcomes.failed(command)
                }
            }
        }

        /// A linearizable read on any live replica (followers serve them too): once served,
        /// the replica's machine must hold every command acknowledged before it was asked.
        func read() {
            let live = ids.filter { replicas[$0] != nil }
            guard !live.isEmpty else { return }
            let id = live[random.below(live.count)]
            guard let replica = replicas[id], let machine = machines[id] else { return }
            let before = outcomes.acknowledged
            replica.submit(.read { [machine] result in
                guard case .success = result else { return }
                let applied = Set(machine.applied.map { "\($0.index):\($0.command)" })
                let missing = before.filter { !applied.contains($0.value) }
                outcomes.read(stale: missing.isEmpty ? nil : "a read on replica \(id) missed \(missing.count) acknowledged commands, e.g. \(missing.first!.value)")
            })
        }

        /// One millisecond: messages due are delivered, every live loop takes a turn.
        func step() {
            clock.advance(by: .milliseconds(1))
            for (node, messages) in network.due() { replicas[node]?.receive(messages) }
            for id in ids {
                guard let replica = replicas[id], !replica.turnQueued() else { continue }
                // Nothing here should stop a loop (no disk fails, every entry is known): a
                // loop that did is ended as the node would end it, and stays down.
                problems.append("replica \(id) stopped by itself (seed \(seed))")
                replica.finishTurning()
                replicas[id] = nil
            }
        }

        let faultsEnd = seconds * 1_000
        var sequence = 0
        for ms in 0..<(faultsEnd + 1_000) {
            if ms == 2_500, let leader = ids.first(where: { replicas[$0]?.isLeader == true }), down.isEmpty {
                // Every run kills a leader at least once, with commands in flight.
                replicas[leader] = nil
                machines[leader] = nil
                network.drop(to: leader)
                down[leader] = clock.now + .milliseconds(300)
                crashes += 1
            }
            if ms < faultsEnd {
                if random.chance(0.04) {
                    sequence += 1
                    propose("c\(sequence)")
                }
                if random.chance(0.01) { read() }
                if ms % 500 == 0 {
                    switch random.below(6) {
                    case 0:
                        let isolated = ids[random.below(ids.count)]
                        network.partition([isolated], from: ids)
                    case 1:
                        // The leader, if any, is cut off with nobody.
                        if let leader = ids.first(where: { replicas[$0]?.isLeader == true }) { network.partition([leader], from: ids) }
                    case 2:
                        let live = ids.filter { replicas[$0] != nil }
                        if live.count == ids.count {
                            let victim = live[random.below(live.count)]
                            // SIGKILL: the loop is dropped as it stands; messages to it are lost.
                            replicas[victim] = nil
                            machines[victim] = nil
                            network.drop(to: victim)
                            down[victim] = clock.now + .milliseconds(200 + random.below(1_500))
                            crashes += 1
                        }
                    case 3: network.setLossy(true)
                    case 4:
                        // An operator moves leadership on.
                        if let leader = ids.first(where: { replicas[$0]?.isLeader == true }) {
                            replicas[leader]?.transferLeadership(to: ids.filter { $0 != leader }[random.below(ids.count - 1)])
                        }
                    default:
                        network.heal()
                        network.setLossy(false)
                    }
                }
            } else if ms == faultsEnd {
                network.heal()
                network.setLossy(false)
            }
            for (id, at) in down.sorted(by: { $0.key < $1.key }) where at <= clock.now || ms >= faultsEnd {
                down[id] = nil
                try start(id)
            }
            step()
        }
        // After the faults: a new command commits within a few election timeouts.
        let last = "after-the-faults"
        var lastAcknowledged = false
        for attempt in 0..<20 where !lastAcknowledged {
            propose("\(last)-\(attempt)")
            for _ in 0..<300 { step() }
            lastAcknowledged = outcomes.acknowledged.keys.contains("\(last)-\(attempt)")
        }
        if !lastAcknowledged { problems.append("no command committed after the faults stopped (seed \(seed))") }
        for _ in 0..<200 { step() }
        for replica in replicas.values { replica.finishTurning() }
        return Result(problems: problems, logs: machines.mapValues { $0.applied.filter { $0.command != Ledger.leaderCommand }.map { "\($0.index):\($0.command)" } },
                      acknowledged: outcomes.acknowledged, reads: outcomes.reads.served, staleReads: outcomes.reads.stale, crashes: crashes, proposed: proposed)
    }

    /// Runs a simulation on a thread of its own and waits for it without holding a
    /// cooperative thread.
    static func simulate(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Swift.Result { try body() }) }.start()
        }
    }

    /// What the checker finds wrong with a run; empty when nothing is.
    static func violations(_ result: Result) -> [String] {
        var found: [String] = result.problems
        let logs = result.logs.sorted { $0.key < $1.key }
        guard let reference = logs.first?.value else { return ["no replica left"] }
        for (id, log) in logs where log != reference {
            found.append("replica \(id) applied \(log.count) commands, replica \(logs[0].key) \(reference.count): the logs differ")
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

    /// Seeds of every run: 20 (about a second each); `CHORUS_REPLICA_SIM_SEEDS` sets how many,
    /// `CHORUS_REPLICA_SIM_SEED` runs one.
    static var seeds: [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let one = environment["CHORUS_REPLICA_SIM_SEED"].flatMap(UInt64.init) { return [one] }
        return Array(1...max(1, environment["CHORUS_REPLICA_SIM_SEEDS"].flatMap(UInt64.init) ?? 20))
    }

    @Test(arguments: seeds)
    func theProductionLoopKeepsEveryAcknowledgedCommandUnderFaults(seed: UInt64) async throws {
        let result = try await Self.simulate { try Self.run(seed: seed) }
        let found = Self.violations(result)
        print("seed \(seed): \(result.acknowledged.count) of \(result.proposed) commands acknowledged, \(result.logs.values.first?.count ?? 0) applied, \(result.reads) reads served, \(result.crashes) crashes")
        #expect(found.isEmpty, "seed \(seed): \(found.prefix(5))")
        // The run did something: commands committed and a replica crashed at least once.
        #expect(result.acknowledged.count > 50, "seed \(seed): only \(result.acknowledged.count) of \(result.proposed) commands acknowledged")
        #expect(result.crashes > 0, "seed \(seed): no crash")
        #expect(result.reads > 10, "seed \(seed): only \(result.reads) reads served")
    }

    @Test func theSameSeedRunsTheSameWay() async throws {
        let first = try await Self.simulate { try Self.run(seed: 7, seconds: 6) }
        let second = try await Self.simulate { try Self.run(seed: 7, seconds: 6) }
        #expect(first == second, "seed 7 ran two ways: \(first.acknowledged.count) and \(second.acknowledged.count) acknowledged")
    }

    /// Acknowledging a command once the leader appended it, before a majority holds it: a
    /// leader cut off or killed with such commands loses them. The checker must see it.
    @Test func acknowledgingBeforeCommitIsCaught() async throws {
        var caughtBy: [UInt64] = []
        for seed in 1...10 as ClosedRange<UInt64> {
            let found = Self.violations(try await Self.simulate { try Self.run(seed: seed, acknowledgeOnAppend: true) })
            if !found.isEmpty {
                print("acknowledge-on-append caught by seed \(seed): \(found.count) violations, the first: \(found[0])")
                caughtBy.append(seed)
                break
            }
        }
        #expect(!caughtBy.isEmpty, "acknowledge-on-append went unnoticed in seeds 1–10")
    }

    #if DEBUG
    /// A commit rule broken in the core the loop drives (test builds only: commit once one
    /// voter holds an entry): the checker must catch it within the first 20 seeds. The core's
    /// subtler planted bugs need the exact sequences of `SafetyBugScenarios`, which this
    /// simulator's random faults do not aim at.
    @Test func aCommitOnOneVoterIsCaught() async throws {
        var caught: UInt64?
        for seed in 1...20 as ClosedRange<UInt64> where caught == nil {
            let found = Self.violations(try await Self.simulate { try Self.run(seed: seed, seconds: 2, plant: { $0.unsafeCommitQuorum = 1 }) })
            if !found.isEmpty {
                print("commit on one voter caught by seed \(seed): \(found.count) violations, the first: \(found[0])")
                caught = seed
            }
        }
        #expect(caught != nil, "a commit on one voter went unnoticed in seeds 1–20")
    }
    #endif
}

extension ReplicaLoopTests.Cluster {
    /// A replica on `clock` that sends through the simulated `network`, turned by the
    /// simulation rather than a thread of its own.
    func replica(_ node: NodeID, _ machine: ReplicaLoopTests.Ledger, network: ReplicaSimulationTests.Network, clock: ManualClock,
                 seed: UInt64, acknowledgeOnAppend: Bool, plant: (inout RaftOptions) -> Void) throws -> Replica<ReplicaLoopTests.Ledger> {
        let configuration = configuration(node)
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory + "/snapshots", withIntermediateDirectories: true)
        let log = try LogStore(directory: configuration.dataDirectory + "/log")
        var logger = Logger(label: "replica-\(node)")
        logger.logLevel = .critical
        let storage = LogStoreAdapter(store: log, bootstrap: try Bootstrap.prepare(log, configuration: configuration, logger: logger))
        var options = RaftOptions(id: node, seed: seed | 1, electionTicks: configuration.electionTicks, heartbeatTicks: configuration.heartbeatTicks)
        options.applied = try machine.position().index
        plant(&options)
        var acknowledge: (@Sendable ([UInt8], Index) -> String?)?
        if acknowledgeOnAppend {
            acknowledge = { command, index in
                let text = String(decoding: command, as: UTF8.self)
                return "\(index):\(text)"
            }
        }
        return try Replica(core: RaftCore(storage: storage, options: options), storage: storage,
                           snapshots: try SnapshotStore(directory: configuration.dataDirectory + "/snapshots"),
                           machine: machine, transport: network, configuration: configuration, acknowledgeOnAppend: acknowledge, clock: clock, logger: logger)
    }
}
