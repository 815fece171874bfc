import Foundation
import Logging
import LogStore
import Projections
import Raft
@testable import Replica
import Synchronization
@testable import Node

/// One run of the replica simulation (see `ReplicaSimulationTests`): production loops over
/// `Machine`s (the tests' ledger, or the chat projections) on one manual clock, a
/// `SimulatedNetwork`, LMDB logs or `SimulatedDisk`s, and the faults and operators the seed
/// decides. Everything runs on the caller's thread.
final class ReplicaSimulation<Machine: SimulatedMachine> {
    typealias Options = SimulationOptions
    typealias Result = SimulationResult

    let seed: UInt64
    let options: Options
    var cluster: ReplicaLoopTests.Cluster
    let clock = ManualClock()
    let network: SimulatedNetwork
    var random: SplitMix
    /// The nodes of the cluster as the simulation knows them, up or down; never reused.
    var members: [NodeID]
    var nextID: NodeID
    /// Nodes started to join, and when: an operator adds them as learners.
    var joining: [NodeID: ContinuousClock.Instant] = [:]
    var machines: [NodeID: Machine] = [:]
    var replicas: [NodeID: Replica<Machine>] = [:]
    var logs: [NodeID: SimulatedDisk] = [:]
    var platters: [NodeID: SimulatedDisk.Platter] = [:]
    /// The disks under the nodes' projections, where they fail (`SimulatedDisks.projectionFaultRate`).
    var projectionDisks: [NodeID: ProjectionsDisk] = [:]
    var stores: [NodeID: SnapshotStore] = [:]
    /// Nodes down, and when they come back.
    var down: [NodeID: ContinuousClock.Instant] = [:]
    /// Nodes whose next start rebuilds the projections from the log's snapshot: the power
    /// went (their pages may be torn), or a disk failed (the node records it, as
    /// `DataDirectory.markDiskFailed`, and its next start rebuilds).
    var rebuilding: Set<NodeID> = []
    let outcomes = SimulationOutcomes()
    let offLoop = OffLoopWork()
    var problems: [String] = []
    var refusedSnapshots: [String] = []
    var crashes = 0
    var proposed = 0
    var snapshotsTaken = 0
    var snapshotsSent = 0
    var sequence = 0
    var faultsOver = false

    init(seed: UInt64, options: Options) {
        self.seed = seed
        self.options = options
        cluster = ReplicaLoopTests.Cluster(size: options.nodes)
        cluster.proposalTimeout = .seconds(2)
        // Snapshots every 64 entries, 16 kept behind: a follower down for a second is sent one.
        cluster.snapshotInterval = 64
        cluster.snapshotTrailingEntries = 16
        // A crash here is the loop dropped, not the machine: what LMDB wrote is in the page
        // cache either way, so the logs may as well live in memory, where an fsync is free
        // (where /dev/shm has room to spare above the loop's free-space floor).
        if let free = StorageFailure.space(of: "/dev/shm")?.available, free > 1 << 30 {
            cluster.directory = "/dev/shm/chorus-replica-sim-\(UUID().uuidString)"
        }
        network = SimulatedNetwork(seed: seed, clock: clock)
        random = SplitMix(state: seed)
        members = (1...UInt64(options.nodes)).map { NodeID($0) }
        nextID = NodeID(options.nodes + 1)
    }

    /// Runs `options.seconds` of faults, then a quiet second and commands until one commits.
    static func run(seed: UInt64, _ options: Options = Options()) -> Result {
        let simulation = ReplicaSimulation(seed: seed, options: options)
        defer {
            for disk in simulation.projectionDisks.values { disk.detach() }
            simulation.cluster.remove()
        }
        return simulation.run()
    }

    func run() -> Result {
        for id in members { start(id) }
        // What the workload needs first (accounts, sessions), each until it is applied.
        for (number, command) in Machine.setup.enumerated() {
            let name = "setup-\(number)"
            // Applied once is enough, whatever it answered: a repeat after a lost answer is
            // refused ("the account exists").
            for _ in 0..<20 where !outcomes.answered(name) {
                propose(name, command)
                for _ in 0..<300 where !outcomes.answered(name) {
                    restart(all: false)
                    step(faults: false)
                }
            }
            if !outcomes.answered(name) { problems.append("setup command \(number) never committed (seed \(seed))") }
            // Not the workload's: its receipt (now or late) is not what the checker looks for.
            outcomes.ignore(name)
        }
        let faultsEnd = options.seconds * 1_000
        for ms in 0..<(faultsEnd + 1_000) {
            if ms == 2_500, let leader, down.isEmpty {
                // Every run kills a leader at least once, with commands in flight.
                crash(leader, downFor: .milliseconds(300))
            }
            if ms < faultsEnd {
                if random.chance(0.04) {
                    sequence += 1
                    let (name, bytes) = Machine.command(sequence)
                    propose(name, bytes)
                }
                // A client sends again what it has no answer for, where that is safe.
                if Machine.retriesAreSafe, random.chance(0.01), let (name, bytes) = outcomes.takeFailed() { propose(name, bytes) }
                if random.chance(0.01) { read() }
                if ms % 500 == 0 { fault() }
            } else if ms == faultsEnd {
                self.faultsEnd()
            }
            restart(all: ms >= faultsEnd)
            step(faults: ms < faultsEnd)
        }
        // After the faults: a new command commits within a few election timeouts.
        var committed = false
        for _ in 0..<20 where !committed {
            sequence += 1
            let (name, bytes) = Machine.command(sequence)
            propose(name, bytes)
            for _ in 0..<300 {
                step(faults: false)
                restart(all: true)
            }
            committed = outcomes.acknowledged.keys.contains(name)
        }
        if !committed { problems.append("no command committed after the faults stopped (seed \(seed))") }
        for _ in 0..<200 { step(faults: false) }
        for replica in replicas.values { replica.finishTurning() }
        return result()
    }

    // MARK: Faults and operators

    /// Every half second: a partition, a crash, a lossy or congested network, a leadership
    /// transfer, a membership change, or calm.
    func fault() {
        switch random.below(options.membership ? 9 : 7) {
        case 0:
            network.partition([members[random.below(members.count)]], from: members)
        case 1:
            // The leader, if any, is cut off with nobody.
            if let leader { network.partition([leader], from: members) }
        case 2:
            let live = members.filter { replicas[$0] != nil }
            // At most one node down at a time: the voters keep a majority up.
            if live.count == members.count {
                crash(live[random.below(live.count)], downFor: .milliseconds(200 + random.below(1_500)), powerLoss: random.chance(0.5))
            }
        case 3: network.setLossy(true)
        case 4:
            // An operator moves leadership on.
            if let leader {
                let others = members.filter { $0 != leader }
                replicas[leader]?.transferLeadership(to: others[random.below(others.count)])
            }
        case 5: network.setSlow(true)
        case 7, 8: changeMembership()
        default: calm()
        }
    }

    func calm() {
        network.heal()
        network.setLossy(false)
        network.setSlow(false)
    }

    /// The faults stop: the network heals and the disks work from now on.
    func faultsEnd() {
        calm()
        faultsOver = true
        for platter in platters.values { platter.faultRate = 0 }
        for disk in projectionDisks.values { disk.heal() }
    }

    var leader: NodeID? { members.first { replicas[$0]?.isLeader == true } }

    /// An operator's next step: promote a learner, add a node, or remove a voter (3 to 5
    /// voters). Nodes the configuration no longer holds are shut down first.
    func changeMembership() {
        guard let leader, let replica = replicas[leader] else { return }
        let configuration = currentConfiguration
        retire(outside: configuration)
        let request: MembershipRequest
        if let learner = configuration.learners.sorted().first {
            request = .promote(learner)
        } else if configuration.voters.count < 5, configuration.voters.count <= 3 || random.chance(0.5) {
            let id = nextID
            nextID += 1
            members.append(id)
            joining[id] = clock.now
            start(id)
            request = .addLearner(id, context: MemberDirectory.Addresses(peer: PeerAddress(host: "127.0.0.1", port: 1), client: nil).context)
        } else {
            let removable = configuration.sortedVoters.filter { $0 != leader }
            guard !removable.isEmpty else { return }
            request = .remove(removable[random.below(removable.count)], force: false)
        }
        replica.submit(.changeMembership(request) { [outcomes] result in
            if case let .success(index) = result { outcomes.changed(request, at: index) }
        })
    }

    /// The membership as the most advanced live replica applied it.
    var currentConfiguration: ClusterConfiguration {
        let positions = members.compactMap { id in machines[id].flatMap { try? $0.position() } }
        guard let newest = positions.max(by: { $0.index < $1.index }), let configuration = ClusterConfiguration(encoded: newest.configuration) else {
            return ClusterConfiguration(voters: Set(members))
        }
        return configuration
    }

    /// Shuts down, for good, the nodes a configuration does not hold (removed, or never
    /// added), but for those still joining.
    func retire(outside configuration: ClusterConfiguration) {
        for id in members where !configuration.members.contains(id) {
            if let since = joining[id], clock.now - since < .seconds(3) { continue }
            replicas[id]?.finishTurning()
            replicas[id] = nil
            machines[id] = nil
            logs[id] = nil
            platters[id] = nil
            projectionDisks[id]?.detach()
            projectionDisks[id] = nil
            down[id] = nil
            joining[id] = nil
            network.drop(to: id)
            offLoop.drop(id)
            members.removeAll { $0 == id }
        }
        for id in joining.keys where configuration.members.contains(id) { joining[id] = nil }
    }

    // MARK: Nodes

    /// Starts a node from its log (again); one that cannot start (its log names a snapshot
    /// it does not hold, as after a disk that lied about syncing) stays down.
    func start(_ id: NodeID) {
        do {
            try open(id)
        } catch {
            problems.append("replica \(id) cannot start (seed \(seed)): \(error)")
            projectionDisks[id]?.detach()
            replicas[id] = nil
            machines[id] = nil
            logs[id] = nil
        }
    }

    private func open(_ id: NodeID) throws {
        var disk: SimulatedDisk?
        if options.disks.simulated {
            let platter = platters[id] ?? newPlatter(id)
            platters[id] = platter
            disk = SimulatedDisk(platter: platter, path: cluster.configuration(id).dataDirectory + "/log") { [network] in network.hold(id, for: $0) }
            logs[id] = disk
        }
        let (replica, machine): (Replica<Machine>, Machine) = try cluster.replica(id, network: network, clock: clock, seed: seed &* 31 &+ id &+ UInt64(crashes) &* 1_000,
                                                                                 afterPowerLoss: rebuilding.remove(id) != nil,
                                                                                 disk: disk, offLoop: offLoop.runner(for: id), acknowledgeOnAppend: options.acknowledgeOnAppend, plant: options.plant)
        replicas[id] = replica
        machines[id] = machine
        if options.disks.projectionFaultRate > 0 {
            let disk = projectionDisks[id] ?? ProjectionsDisk(directory: cluster.configuration(id).dataDirectory + "/state", seed: seed &* 1_009 &+ id,
                                                              rate: faultsOver ? 0 : options.disks.projectionFaultRate)
            projectionDisks[id] = disk
            disk.attach()
        }
        if options.refusesSnapshots == id, let ledger = machine as? ReplicaLoopTests.Ledger { ledger.refuseSnapshots() }
    }

    private func newPlatter(_ id: NodeID) -> SimulatedDisk.Platter {
        // A founding node's disk holds what bootstrapping wrote; a joining node's is empty.
        let image: SimulatedDisk.Image = id <= NodeID(options.nodes) ? .bootstrapped(voters: (1...UInt64(options.nodes)).map { NodeID($0) }) : .init()
        let platter = SimulatedDisk.Platter(bootstrap: image, seed: seed &* 977 &+ id)
        platter.faultRate = faultsOver ? 0 : options.disks.faultRate
        platter.liesAboutSync = options.disks.liesAboutSync
        platter.forgetsVotes = options.disks.forgetsVotes
        return platter
    }

    func store(_ id: NodeID) -> SnapshotStore? {
        if let store = stores[id] { return store }
        let store = try? SnapshotStore(directory: cluster.configuration(id).dataDirectory + "/snapshots")
        stores[id] = store
        return store
    }

    /// SIGKILL, or the power cut: the loop is dropped as it stands, messages to it are lost,
    /// and it starts again from its log after `downFor`. After SIGKILL what the process wrote
    /// and did not sync reaches the disk anyway (the kernel holds it); after a power cut it is
    /// lost, and the node rebuilds its projections (they skip fsync: their pages may be torn).
    func crash(_ id: NodeID, downFor: Duration, powerLoss: Bool = false) {
        if powerLoss { rebuilding.insert(id) }
        takeDown(id, for: downFor, powerLoss: powerLoss)
        crashes += 1
    }

    /// The node is gone (what ran in it and what was on its way to it) until `duration` has
    /// passed.
    func takeDown(_ id: NodeID, for duration: Duration, powerLoss: Bool = false) {
        if !powerLoss { logs[id]?.processEnded() }
        projectionDisks[id]?.detach()
        replicas[id] = nil
        machines[id] = nil
        logs[id] = nil
        network.drop(to: id)
        offLoop.drop(id)
        down[id] = clock.now + duration
    }

    /// Starts the nodes whose time down is over, or all of them.
    func restart(all: Bool) {
        for (id, at) in down.sorted(by: { $0.key < $1.key }) where all || at <= clock.now {
            down[id] = nil
            start(id)
        }
    }

    /// A loop that stopped by itself: the power went during a write (a crash), its disk failed
    /// (the node stops, as it must, and an operator starts it again once the disk is fixed),
    /// or something that should never stop a node did (a problem).
    func stopped(_ id: NodeID, _ replica: Replica<Machine>) {
        let reason = replica.stoppedBecause.map { "\($0)" } ?? "finished"
        if options.refusesSnapshots == id, replica.stoppedBecause is any MachineRefusal {
            // Down until upgraded: out of the comparison, like a node an operator replaces.
            refusedSnapshots.append("replica \(id): \(reason)")
            replica.finishTurning()
            replicas[id] = nil
            machines[id] = nil
            return
        }
        // The projections' disk first: a node stops at the first failed write, wherever it was.
        // The node records the failure as it stops, and its next start rebuilds the
        // projections; a full disk may refuse that record too.
        var recorded = true
        switch (projectionDisks[id]?.failed, logs[id]?.failed) {
        case let (fault?, _):
            let said = fault == .full ? "is full" : "reported an I/O error"
            if !reason.contains("to the projections") && !reason.contains("installing") || !reason.contains("/state/") || !reason.contains(said) {
                problems.append("replica \(id) stopped on \(fault.rawValue) saying: \(reason)")
            }
            recorded = projectionDisks[id]?.recordsFailure(fault) ?? true
        case (nil, .powerLoss?):
            return crash(id, downFor: .milliseconds(100 + random.below(1_000)), powerLoss: true)
        case (nil, .full?):
            if !reason.contains("is full") { problems.append("replica \(id) stopped on a full disk saying: \(reason)") }
        case (nil, .ioError?):
            if !reason.contains("reported an I/O error") { problems.append("replica \(id) stopped on an I/O error saying: \(reason)") }
        case (nil, nil):
            // Nothing else should stop a loop: it stays down, as an operator would keep a
            // node that broke an invariant.
            problems.append("replica \(id) stopped by itself (seed \(seed)): \(reason)")
            replica.finishTurning()
            projectionDisks[id]?.detach()
            replicas[id] = nil
            return
        }
        // The node ends as `run()` ends it, and the operator restarts it: the projections are
        // rebuilt if the failure was recorded, and the log applied again.
        replica.finishTurning()
        takeDown(id, for: .milliseconds(200 + random.below(1_000)))
        if recorded { rebuilding.insert(id) }
    }

    // MARK: Clients

    func propose(_ name: String, _ command: [UInt8]) {
        // The client asks whoever says it leads, or anyone.
        let leading = members.filter { replicas[$0]?.isLeader == true }
        let candidates = leading.isEmpty ? members.filter { replicas[$0] != nil } : leading
        guard !candidates.isEmpty, let replica = replicas[candidates[random.below(candidates.count)]] else { return }
        proposed += 1
        replica.propose(command) { [outcomes] result in
            switch result {
            case let .success(output):
                if let receipt = Machine.receipt(output, name: name) { outcomes.acknowledged(name, receipt) } else { outcomes.refused(name) }
            case .failure: outcomes.failed(name, command)
            }
        }
    }

    /// A linearizable read on any live replica (followers serve them too): once served, the
    /// replica's machine must hold every command acknowledged before it was asked.
    func read() {
        let live = members.filter { replicas[$0] != nil }
        guard !live.isEmpty else { return }
        let id = live[random.below(live.count)]
        guard let replica = replicas[id], let machine = machines[id] else { return }
        let before = outcomes.acknowledged
        replica.submit(.read { [machine, outcomes] result in
            guard case .success = result else { return }
            let applied = Set((try? machine.transcript()) ?? [])
            let missing = before.values.filter { !applied.contains($0) }.sorted()
            outcomes.read(stale: missing.isEmpty ? nil : "a read on replica \(id) missed \(missing.count) acknowledged commands, e.g. \(missing[0])")
        })
    }

    // MARK: Time

    /// One millisecond: work handed off the loops runs, messages due are delivered, every live
    /// loop not waiting on its disk takes a turn.
    func step(faults: Bool) {
        clock.advance(by: .milliseconds(1))
        snapshotsTaken += offLoop.runAll()
        for (node, messages) in network.due() {
            guard let replica = replicas[node] else { continue }
            replica.receive(messages.filter(transferred))
        }
        for id in members {
            guard let replica = replicas[id], !network.isHeld(id) else { continue }
            if !replica.turnQueued() { stopped(id, replica) }
        }
        // A node that just granted a vote sometimes dies at once, and comes back within the
        // same election (1–20 ms: faster than a process restarts, to meet the election's
        // other candidates): what it promised must have been written first.
        for id in network.takeVoters().sorted() where faults && replicas[id] != nil && random.chance(0.3) {
            crash(id, downFor: .milliseconds(1 + random.below(20)))
        }
    }

    /// What the peer service does with a leader's snapshot message before Raft sees it: the
    /// file is streamed from the leader's store into the follower's (verified, synced). A
    /// message whose file the leader no longer holds is lost, as a failed transfer.
    func transferred(_ message: Message) -> Bool {
        guard case let .snapshot(snapshot) = message.kind else { return true }
        guard let from = store(message.from), let to = store(message.to),
              let info = from.find(index: snapshot.metadata.index, term: snapshot.metadata.term) else { return false }
        let partial = to.partialPath(sha256: info.sha256)
        try? FileManager.default.removeItem(atPath: partial)
        guard (try? FileManager.default.copyItem(atPath: from.dataPath(info), toPath: partial)) != nil,
              (try? to.adopt(partial: partial, info: info)) != nil else { return false }
        snapshotsSent += 1
        return true
    }

    // MARK: Result

    func result() -> Result {
        for (term, leaders) in network.termsWithTwoLeaders.sorted(by: { $0.key < $1.key }) {
            problems.append("term \(term) had leaders \(leaders.sorted())")
        }
        problems += network.doubleVotes
        var faults: [String: Int] = [:]
        for platter in platters.values { for (fault, count) in platter.faults { faults["\(fault)", default: 0] += count } }
        for disk in projectionDisks.values { for (fault, count) in disk.faults { faults[fault.rawValue, default: 0] += count } }
        // The members of the final configuration are compared; nodes removed are gone.
        let configuration = currentConfiguration
        let compared = machines.filter { configuration.members.contains($0.key) }
        return Result(problems: problems, refusedSnapshots: refusedSnapshots,
                      logs: compared.mapValues { machine in (try? machine.transcript()) ?? ["the machine cannot be read"] },
                      acknowledged: outcomes.acknowledged, reads: outcomes.reads.served, staleReads: outcomes.reads.stale, crashes: crashes, proposed: proposed,
                      writes: platters.values.reduce(0) { $0 + $1.writes }, diskFaults: faults, snapshotsTaken: snapshotsTaken, snapshotsSent: snapshotsSent,
                      membershipChanges: outcomes.membershipChanges, voters: configuration.sortedVoters)
    }
}

/// What a run is made of, besides its seed.
struct SimulationOptions: Sendable {
    var seconds = 12
    /// Voters the cluster starts with.
    var nodes = 3
    var disks = SimulatedDisks.lmdb
    /// Operators add learners, promote them and remove voters (3 to 5 voters).
    var membership = true
    /// Planted: commands acknowledged once appended, before they commit.
    var acknowledgeOnAppend = false
    /// Planted in the core (`RaftOptions`, test builds).
    var plant: @Sendable (inout RaftOptions) -> Void = { _ in }
    /// This node's ledger refuses every snapshot it is handed, as a build meeting a newer
    /// cluster version's does: the node must stop with the refusal (not as on a failed disk)
    /// and stays down, as an operator would keep it until it is upgraded.
    var refusesSnapshots: NodeID?
}

/// The disks a run's replicas write their logs to.
struct SimulatedDisks: Sendable {
    /// A simulated disk (`SimulatedDisk`); LMDB in memory when false.
    var simulated = false
    /// Chance that a write fails (an I/O error, a full disk or a power cut).
    var faultRate = 0.0
    /// Chance that a write commit in the projections' own files (`state/`) fails with a full
    /// file system or an I/O error (`ProjectionsDisk`; the chat projections' only).
    var projectionFaultRate = 0.0
    /// Planted: a sync that returns without writing.
    var liesAboutSync = false
    /// Planted: the vote is never written.
    var forgetsVotes = false

    static let lmdb = SimulatedDisks()
    static let faulty = SimulatedDisks(simulated: true, faultRate: 0.006, projectionFaultRate: 0.004)
}

/// What one run left: each member's applied log ("index:command", as the callers' outputs
/// say) and the acknowledged commands.
struct SimulationResult: Equatable, Sendable {
    /// What went wrong beside the checker's rules: a loop that stopped by itself, a node
    /// that could not start, no command committed after the faults, two leaders in a term,
    /// two votes in a term.
    var problems: [String] = []
    /// Nodes that stopped on a snapshot their machine refused (`refusesSnapshots`), and why.
    var refusedSnapshots: [String] = []
    var logs: [NodeID: [String]]
    var acknowledged: [String: String]
    /// Linearizable reads served, and those that missed a command acknowledged before
    /// they were asked.
    var reads: Int
    var staleReads: [String]
    var crashes: Int
    var proposed: Int
    /// Writes to the simulated disks, and the faults they met ("full", "ioError",
    /// "powerLoss"): none on LMDB.
    var writes = 0
    var diskFaults: [String: Int] = [:]
    /// Snapshots started (taken off the loops), and snapshot files sent to followers too far
    /// behind for the log (each installed unless the follower went down first).
    var snapshotsTaken = 0
    var snapshotsSent = 0
    /// Membership changes applied, and the voters at the end.
    var membershipChanges = 0
    var voters: [NodeID] = []
}

/// What the clients and operators saw: commands acknowledged (with the output) or failed,
/// reads served, membership changes applied. Filled in by replies, on the loops' turns.
final class SimulationOutcomes: Sendable {
    private struct State {
        var acknowledged: [String: String] = [:]
        /// Commands without an answer (not the leader, timed out, leadership lost), which a
        /// client may send again, oldest first.
        var failed: [(name: String, bytes: [UInt8])] = []
        var refused: Set<String> = []
        var ignored: Set<String> = []
        var reads = 0
        var staleReads: [String] = []
        var membership: [(request: MembershipRequest, index: Index)] = []
    }

    private let state = Mutex(State())
    func acknowledged(_ command: String, _ output: String) {
        state.withLock { state in
            if !state.ignored.contains(command) { state.acknowledged[command] = output }
        }
    }
    func failed(_ name: String, _ bytes: [UInt8]) { state.withLock { $0.failed.append((name, bytes)) } }
    func refused(_ name: String) { state.withLock { _ = $0.refused.insert(name) } }
    /// Whether the command named `name` was applied, acknowledged or refused.
    func answered(_ name: String) -> Bool { state.withLock { $0.acknowledged[name] != nil || $0.refused.contains(name) } }

    /// Forgets `name`'s receipt, and any that comes later.
    func ignore(_ name: String) {
        state.withLock { state in
            state.acknowledged[name] = nil
            state.ignored.insert(name)
        }
    }
    /// The oldest command without an answer, to send again.
    func takeFailed() -> (name: String, bytes: [UInt8])? {
        state.withLock { $0.failed.isEmpty ? nil : $0.failed.removeFirst() }
    }
    var acknowledged: [String: String] { state.withLock { $0.acknowledged } }
    func read(stale: String?) {
        state.withLock { state in
            state.reads += 1
            if let stale { state.staleReads.append(stale) }
        }
    }
    var reads: (served: Int, stale: [String]) { state.withLock { ($0.reads, $0.staleReads) } }
    func changed(_ request: MembershipRequest, at index: Index) { state.withLock { $0.membership.append((request, index)) } }
    var membershipChanges: Int { state.withLock { $0.membership.count } }
}

/// Work the loops hand off their thread (snapshots being taken), run by the simulation
/// at the start of the next millisecond, in the order it was handed over.
final class OffLoopWork: Sendable {
    private let queue = Mutex<[(node: NodeID, work: @Sendable () -> Void)]>([])

    func runner(for node: NodeID) -> @Sendable (@escaping @Sendable () -> Void) -> Void {
        { [self] work in queue.withLock { $0.append((node, work)) } }
    }

    /// Runs what is queued; returns how many.
    func runAll() -> Int {
        let work = queue.withLock { queue in
            defer { queue = [] }
            return queue
        }
        for item in work { item.work() }
        return work.count
    }

    /// A crashed node's threads die with it.
    func drop(_ node: NodeID) { queue.withLock { $0.removeAll { $0.node == node } } }
}

extension ReplicaLoopTests.Cluster {
    /// A replica on `clock` that sends through the simulated `network`, turned by the
    /// simulation rather than a thread of its own; its log on `disk`, or in LMDB. A node
    /// beyond the cluster's founding ones joins (its log starts empty).
    func replica<Machine: SimulatedMachine>(_ node: NodeID, network: SimulatedNetwork, clock: ManualClock, seed: UInt64, afterPowerLoss: Bool = false, disk: SimulatedDisk?,
                                            offLoop: @escaping Replica<Machine>.OffLoop, acknowledgeOnAppend: Bool,
                                            plant: (inout RaftOptions) -> Void) throws -> (Replica<Machine>, Machine) {
        var configuration = configuration(node)
        configuration.join = node > UInt64(size)
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory + "/snapshots", withIntermediateDirectories: true)
        // A run's disk failures are said at critical level, as a node says them: not here.
        let logger = Logger(label: "replica-\(node)") { _ in SwiftLogNoOpLogHandler() }
        let storage: any ReplicaLog
        if let disk {
            storage = disk
        } else {
            let log = try LogStore(directory: configuration.dataDirectory + "/log")
            storage = LogStoreAdapter(store: log, bootstrap: try Bootstrap.prepare(log, configuration: configuration, logger: logger))
        }
        let snapshots = try SnapshotStore(directory: configuration.dataDirectory + "/snapshots")
        let machine = try Machine.open(directory: configuration.dataDirectory, logStart: storage.firstIndex() - 1, recorded: storage.snapshotMetadata(),
                                       snapshots: snapshots, afterPowerLoss: afterPowerLoss)
        var options = RaftOptions(id: node, seed: seed | 1, electionTicks: configuration.electionTicks, heartbeatTicks: configuration.heartbeatTicks)
        options.applied = try machine.position().index
        plant(&options)
        let replica = try Replica(core: RaftCore(storage: storage, options: options), storage: storage,
                                  snapshots: snapshots, machine: machine, transport: network, options: configuration.replicaOptions,
                                  acknowledgeOnAppend: acknowledgeOnAppend ? Machine.acknowledgedOnAppend : nil, clock: clock, offLoop: offLoop, logger: logger)
        return (replica, machine)
    }
}
