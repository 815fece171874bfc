import Raft

/// A deterministic cluster: N cores in one process on a virtual clock, a virtual network and
/// virtual disks, with faults injected from one seed. After every step the `Checker` verifies
/// Raft's safety properties; a failure names the seed that replays it.
final class Simulation {
    struct Faults {
        var dropRate = 0.0
        var duplicateRate = 0.0
        /// Delivery delay in micro-ticks (10 per core tick).
        var delay: ClosedRange<Int> = 1...3
        /// Share of messages held much longer, so they arrive out of order.
        var reorderRate = 0.0
        var reorderDelay: ClosedRange<Int> = 10...80
        /// Share of writes that take long to reach the disk.
        var slowDiskRate = 0.0
        var slowDiskDelay: ClosedRange<Int> = 5...40

        static let reliable = Faults()
        static let unreliable = Faults(dropRate: 0.1, duplicateRate: 0.05, delay: 1...6, reorderRate: 0.1, slowDiskRate: 0.1)
    }

    struct Link: Hashable {
        var from: NodeID
        var to: NodeID
    }

    struct InFlight {
        var due: Int
        var sequence: Int
        var message: Message
        var origin: Origin = .honest
        /// Where the network takes it: `message.to`, unless a liar addressed it wrongly.
        var destination: NodeID
        /// What the sender's build said with it, and the sender's incarnation (`VersionModel`).
        var build: UInt32 = 0
        var incarnation = 0
    }

    /// Who made a message, and so what its recipient must do with it.
    enum Origin {
        /// Sent by an honest core: must never be refused.
        case honest
        /// A lie that validation must catch: must be refused.
        case mustRefuse
        /// Anything else an adversary sends (replays, arbitrary bytes): either way.
        case mayPass
    }

    /// Rewrites what a liar sends: each message becomes zero or more, each with its origin.
    typealias Tamper = (Message, Simulation) -> [(Message, Origin)]
    /// Servers whose outgoing messages go through `tamper` (the adversarial scenarios).
    var liars: Set<NodeID> = []
    var tamper: Tamper?
    /// When false, a forged message that got through is not a failure (arbitrary lies, where
    /// only "nothing traps" is asserted).
    var requireRefusals = true
    /// Cluster versions and builds (`VersionSkewScenarios`); nil elsewhere.
    var versions: VersionModel?
    /// Messages refused by their recipients, by `Refusal.reason`.
    private(set) var refusals: [String: Int] = [:]

    static let microticksPerTick = 10

    let seed: UInt64
    var random: SimRandom
    var now = 0
    private(set) var nodes: [NodeID: SimNode] = [:]
    var ids: [NodeID] { nodes.keys.sorted() }
    var faults: Faults
    var checker: Checker
    private var queue: [InFlight] = []
    private var sequence = 0
    private var blocked: Set<Link> = []
    /// Servers cut off from everyone (MIT-style "disconnected").
    private(set) var isolated: Set<NodeID> = []
    /// Messages sent so far, by kind name.
    private(set) var sentCount = 0
    let baseOptions: (NodeID) -> RaftOptions
    /// The configuration every server's disk starts from.
    let bootstrap: ClusterConfiguration

    /// Servers 1...`count`, all voters but `learners`.
    init(seed: UInt64, nodes count: Int, learners: Set<NodeID> = [], faults: Faults = .reliable, configure: (inout RaftOptions) -> Void = { _ in }) {
        self.seed = seed
        random = SimRandom(state: seed)
        self.faults = faults
        checker = Checker(seed: seed)
        var template = RaftOptions(id: 0, seed: seed)
        configure(&template)
        let frozen = template
        baseOptions = { id in
            var options = frozen
            options.id = id
            return options
        }
        let configuration = ClusterConfiguration(voters: Set(1...NodeID(count)).subtracting(learners), learners: learners)
        bootstrap = configuration
        for id in 1...NodeID(count) {
            nodes[id] = SimNode(id: id, configuration: configuration, options: baseOptions(id))
        }
    }

    func node(_ id: NodeID) -> SimNode { nodes[id]! }
    func raft(_ id: NodeID) -> RaftCore { nodes[id]!.raft! }

    /// Adds a server that starts with an empty log: it learns the configuration from the
    /// leader's log or snapshot once it is added. Its disk holds the bootstrap configuration
    /// every other server started from, as the node's joiners share the log's bootstrap
    /// entries: the log's configuration entries apply to the same base everywhere.
    func addServer(_ id: NodeID) {
        nodes[id] = SimNode(id: id, configuration: bootstrap, options: baseOptions(id))
    }

    // MARK: Time

    /// One micro-tick: clocks, deliveries, disk writes, then every invariant.
    func step() throws {
        now += 1
        checker.time = now
        if now % Self.microticksPerTick == 0 {
            for id in ids where nodes[id]!.isUp { nodes[id]!.raft!.tick() }
        }
        try deliverDue()
        for id in ids { try process(nodes[id]!) }
        for id in ids { try checker.checkNode(nodes[id]!) }
        if let versions {
            versions.finalize(self)
            try versions.check(self)
        }
    }

    func run(ticks: Int) throws {
        for _ in 0..<(ticks * Self.microticksPerTick) { try step() }
    }

    /// Steps until `condition` holds; false if `ticks` pass first.
    @discardableResult
    func run(upTo ticks: Int, until condition: () -> Bool) throws -> Bool {
        for _ in 0..<(ticks * Self.microticksPerTick) {
            if condition() { return true }
            try step()
        }
        return condition()
    }

    // MARK: Network

    private func deliverDue() throws {
        guard queue.contains(where: { $0.due <= now }) else { return }
        let due = queue.filter { $0.due <= now }.sorted { ($0.due, $0.sequence) < ($1.due, $1.sequence) }
        queue.removeAll { $0.due <= now }
        for item in due {
            let m = item.message
            guard let target = nodes[item.destination], target.isUp,
                  !blocked.contains(Link(from: m.from, to: target.id)) else { continue }
            if let versions {
                // A stream ends with its process: what a restarted sender's former process
                // sent is never read after the new one speaks (TCP, and the node's streams).
                guard nodes[m.from].map({ $0.incarnation == item.incarnation }) ?? true else { continue }
                guard versions.accepts(target, from: m.from, build: item.build) else { continue }
            }
            let refusal = target.raft!.step(m)
            if let refusal { refusals[refusal.reason, default: 0] += 1 }
            switch (item.origin, refusal) {
            case (.honest, .unknownSender?) where !target.raft!.configuration.members.contains(m.from):
                // Sent by a server the recipient's configuration has since removed (a leader
                // removing itself still answers until its removal commits): rightly refused.
                break
            case let (.honest, refusal?):
                throw checker.fail("node \(target.id) refused an honest message \(m): \(refusal)")
            case (.mustRefuse, nil) where requireRefusals:
                throw checker.fail("node \(target.id) accepted a forged message \(m)")
            default:
                break
            }
        }
    }

    /// Puts a message on the wire as if `m.from` had sent it, to `destination` (default
    /// `m.to`).
    func inject(_ m: Message, origin: Origin, destination: NodeID? = nil) {
        enqueue(m, origin: origin, destination: destination)
    }

    private func send(_ messages: [Message]) {
        for m in messages {
            sentCount += 1
            if blocked.contains(Link(from: m.from, to: m.to)) || random.chance(faults.dropRate) { continue }
            if let versions, let sender = nodes[m.from], !versions.sends(m, from: sender) { continue }
            if let tamper, liars.contains(m.from) {
                for (forged, origin) in tamper(m, self) { enqueue(forged, origin: origin, destination: m.to) }
                continue
            }
            enqueue(m)
            if random.chance(faults.duplicateRate) { enqueue(m) }
        }
    }

    private func enqueue(_ m: Message, origin: Origin = .honest, destination: NodeID? = nil) {
        let delay = random.chance(faults.reorderRate)
            ? Int.random(in: faults.reorderDelay, using: &random)
            : Int.random(in: faults.delay, using: &random)
        sequence += 1
        let build = versions?.builds[m.from] ?? 0
        queue.append(InFlight(due: now + delay, sequence: sequence, message: m, origin: origin, destination: destination ?? m.to, build: build,
                              incarnation: nodes[m.from]?.incarnation ?? 0))
    }

    /// Cuts `id` off from every other server, both ways.
    func disconnect(_ id: NodeID) {
        isolated.insert(id)
        for other in ids where other != id {
            blocked.insert(Link(from: id, to: other))
            blocked.insert(Link(from: other, to: id))
        }
    }

    func connect(_ id: NodeID) {
        isolated.remove(id)
        for other in ids where other != id && !isolated.contains(other) {
            blocked.remove(Link(from: id, to: other))
            blocked.remove(Link(from: other, to: id))
        }
    }

    /// Only servers in the same group can talk.
    func partition(_ groups: [[NodeID]]) {
        heal()
        for a in ids {
            for b in ids where a != b {
                let same = groups.contains { $0.contains(a) && $0.contains(b) }
                if !same { blocked.insert(Link(from: a, to: b)) }
            }
        }
        isolated = Set(groups.filter { $0.count == 1 }.flatMap { $0 })
    }

    /// Messages from `from` to `to` are lost; the other way still works.
    func cutOneWay(from: NodeID, to: NodeID) {
        blocked.insert(Link(from: from, to: to))
    }

    func heal() {
        blocked = []
        isolated = []
    }

    // MARK: Crashes

    /// Crashes `id`; half the time, as a killed process does, its connections close and the
    /// servers still connected to it are told (`RaftCore.connectionLost`), the rest of the
    /// time it falls silent as a machine that lost power does.
    func crash(_ id: NodeID) {
        crash(id, closingConnections: random.chance(0.5))
    }

    func crash(_ id: NodeID, closingConnections: Bool) {
        nodes[id]!.crash()
        guard closingConnections else { return }
        for other in ids where other != id && nodes[other]!.isUp && !blocked.contains(Link(from: id, to: other)) {
            nodes[other]!.raft!.connectionLost(to: id)
        }
    }

    /// Tells `at` that its connection to `peer` closed, whether or not `peer` is alive (a
    /// reset connection, a restarted link).
    func reportConnectionLost(at: NodeID, peer: NodeID) {
        guard nodes[at]!.isUp else { return }
        nodes[at]!.raft!.connectionLost(to: peer)
    }

    func restart(_ id: NodeID) {
        if nodes[id]!.isUp { nodes[id]!.crash() }
        nodes[id]!.restart()
        versions?.restarted(id)
    }

    // MARK: Disks and the application

    private func process(_ node: SimNode) throws {
        guard node.isUp else { return }
        if let pending = node.pendingWrite {
            guard pending.due <= now else { return }
            node.pendingWrite = nil
            try finish(node, pending.ready)
        }
        guard node.isUp, node.raft!.hasReady else { return }
        let ready = node.raft!.ready()
        if let first = ready.entries.first {
            let previous = first.index > 1 ? node.raft!.term(at: first.index - 1) : 0
            try checker.checkAppended(ready.entries, previousTerm: previous, node: node.id)
        }
        let effects = SimEffects(simulation: self, node: node)
        node.readyHandling.start(ready, effects)
        if ready.mustSync && random.chance(faults.slowDiskRate) {
            // The write is "on the disk" a while: the rest waits for it, as the loop's thread does.
            node.pendingWrite = (ready, now + Int.random(in: faults.slowDiskDelay, using: &random))
        } else {
            try finish(node, ready)
        }
    }

    /// The rest of a ready, through the production code's `ReadyHandling`. An entry the node's
    /// build does not apply stops it, as it stops the node (`VersionModel`).
    private func finish(_ node: SimNode, _ ready: Ready) throws {
        do {
            try node.readyHandling.finish(ready, SimEffects(simulation: self, node: node))
        } catch is SimEffects.Halted {
            node.crash()
        }
    }

    /// What a simulated node does for `ReadyHandling`: its memory disk, its hash-chain
    /// application, the network, and the checker after each step.
    private final class SimEffects: ReadyEffects {
        /// The node met an entry its build does not apply: nothing of the batch was applied.
        struct Halted: Error {}

        unowned let simulation: Simulation
        let node: SimNode

        init(simulation: Simulation, node: SimNode) {
            self.simulation = simulation
            self.node = node
        }

        func send(_ messages: [Message]) {
            simulation.send(messages)
        }

        func write(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
            if let hardState { node.storage.setHardState(hardState) }
            if let snapshot { node.storage.applySnapshot(snapshot) }
            node.storage.append(entries)
            if let snapshot {
                node.restoreApplication(from: snapshot)
                try simulation.checker.checkSnapshot(snapshot, hash: node.appliedHash, node: node.id)
            }
        }

        func apply(_ entries: [Entry]) throws {
            if let again = entries.first, again.index <= node.appliedIndex {
                throw simulation.checker.fail("node \(node.id) was handed entry \(again.index) to apply again, after applying through \(node.appliedIndex)")
            }
            if let versions = simulation.versions, let unknown = entries.first(where: { versions.stops(node, at: $0) }) {
                versions.halted[node.id] = unknown.index
                node.halted = true
                throw Halted()
            }
            for entry in entries {
                guard entry.index == node.appliedIndex + 1 else {
                    throw simulation.checker.fail("node \(node.id) applied \(entry.index) after \(node.appliedIndex): a gap")
                }
                var hash = fnv(node.appliedHash, withUnsafeBytes(of: entry.index.bigEndian, Array.init))
                hash = fnv(hash, entry.data)
                if let versions = simulation.versions { hash = fnv(hash, versions.apply(node, entry)) }
                node.appliedHash = hash
                node.appliedIndex = entry.index
                node.appliedData[entry.index] = entry.data
                if entry.kind == .configuration, let change = ConfigurationChange(encoded: entry.data) {
                    node.appliedConfiguration = node.appliedConfiguration.applying(change)
                }
                try simulation.checker.checkApplied(entry, hash: hash, node: node.id)
            }
        }

        func confirm(_ readStates: [ReadState]) {
            node.readStates += readStates
        }

        func advance(_ ready: Ready) {
            node.raft!.advance(ready)
        }
    }

    // MARK: Observation and client actions

    /// The servers that are up and not cut off.
    var reachable: [NodeID] { ids.filter { nodes[$0]!.isUp && !isolated.contains($0) } }

    /// The leader with the highest term among `candidates` (default: reachable servers).
    func leader(among candidates: [NodeID]? = nil) -> NodeID? {
        let pool = candidates ?? reachable
        return pool.filter { nodes[$0]!.raft?.role == .leader }.max { raft($0).term < raft($1).term }
    }

    /// Waits for exactly one leader of the newest term among `candidates`.
    func waitForLeader(among candidates: [NodeID]? = nil, ticks: Int = 150) throws -> NodeID {
        var found: NodeID?
        try run(upTo: ticks) {
            let pool = (candidates ?? reachable).filter { nodes[$0]!.isUp }
            let leaders = pool.filter { nodes[$0]!.raft!.role == .leader }
            guard let newest = leaders.max(by: { raft($0).term < raft($1).term }) else { return false }
            let maxTerm = pool.map { raft($0).term }.max() ?? 0
            guard raft(newest).term == maxTerm else { return false }
            found = newest
            return true
        }
        guard let found else { throw checker.fail("no leader among \(candidates ?? reachable) within \(ticks) ticks") }
        return found
    }

    /// How many servers applied exactly `data` at `index`.
    func appliedCount(_ index: Index, _ data: [UInt8]) -> Int {
        ids.filter { nodes[$0]!.appliedData[index] == data }.count
    }

    /// MIT 6.5840's `one()`: gives `data` to a leader, retrying with others, until `expected`
    /// servers applied it. Returns its index.
    @discardableResult
    func commit(_ data: [UInt8], expected: Int, ticks: Int = 400, retry: Bool = true) throws -> Index {
        let deadline = now + ticks * Self.microticksPerTick
        while now < deadline {
            var proposed: Index?
            for id in reachable where nodes[id]!.raft!.role == .leader {
                if nodes[id]!.raft!.propose([data]) {
                    proposed = nodes[id]!.raft!.lastIndex
                    break
                }
            }
            if let index = proposed {
                for _ in 0..<(40 * Self.microticksPerTick) {
                    if appliedCount(index, data) >= expected { return index }
                    try step()
                }
                if !retry { break }
            } else {
                try run(ticks: 1)
            }
        }
        throw checker.fail("'\(String(decoding: data, as: UTF8.self))' was not applied by \(expected) servers in \(ticks) ticks")
    }

    /// Proposes through the current leader without waiting; returns (leader, index).
    @discardableResult
    func propose(_ data: [UInt8], via id: NodeID? = nil) -> (NodeID, Index)? {
        guard let id = id ?? leader() else { return nil }
        guard nodes[id]!.isUp, nodes[id]!.raft!.propose([data]) else { return nil }
        return (id, nodes[id]!.raft!.lastIndex)
    }

    func mutateRaft(_ id: NodeID, _ body: (inout RaftCore) -> Void) {
        body(&nodes[id]!.raft!)
    }

    /// Runs until every reachable server applied up to the leader's commit index.
    func waitForConvergence(ticks: Int = 300) throws {
        let ok = try run(upTo: ticks) {
            guard let leader = leader() else { return false }
            let commit = raft(leader).commitIndex
            guard commit == raft(leader).lastIndex else { return false }
            return reachable.allSatisfy { nodes[$0]!.appliedIndex >= commit && nodes[$0]!.pendingWrite == nil }
        }
        if !ok { throw checker.fail("servers did not converge within \(ticks) ticks") }
    }
}
