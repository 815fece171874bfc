import Raft

/// Cores wired by hand for interaction scenarios, after etcd-io/raft's `network`: a message
/// is delivered as soon as it is sent, in order, until none is left, except those `drop`
/// loses or `hold` keeps back for the test to `release`. Nothing ticks unless the test says
/// so, so every election, partition and lost answer is exactly the one the scenario names.
/// Every committed entry is checked against every other node's (state machine safety).
final class HandNetwork {
    private(set) var cores: [NodeID: RaftCore] = [:]
    let storages: [NodeID: MemoryStorage]
    private var options: [NodeID: RaftOptions]
    private var boots: [NodeID: UInt64] = [:]

    /// Messages that are lost on the way.
    var drop: (Message) -> Bool = { _ in false }
    /// Messages kept back until `release`.
    var hold: (Message) -> Bool = { _ in false }
    private(set) var held: [Message] = []
    /// Read states each node's application was handed, in order.
    private(set) var reads: [NodeID: [ReadState]] = [:]
    /// What was committed at each index, as first seen by any node.
    private(set) var committed: [Index: Entry] = [:]
    /// Each time a node committed an entry other than one committed before at its index.
    private(set) var safetyViolations: [String] = []

    init(voters: Set<NodeID>, learners: Set<NodeID> = [], seed: UInt64 = 1, configure: (inout RaftOptions) -> Void = { _ in }) {
        let configuration = ClusterConfiguration(voters: voters, learners: learners)
        var storages: [NodeID: MemoryStorage] = [:]
        var options: [NodeID: RaftOptions] = [:]
        for id in configuration.members {
            storages[id] = MemoryStorage(configuration: configuration)
            var o = RaftOptions(id: id, seed: seed)
            o.electionTicks = 10
            o.heartbeatTicks = 1
            configure(&o)
            options[id] = o
        }
        self.storages = storages
        self.options = options
        for id in configuration.members { cores[id] = RaftCore(storage: storages[id]!, options: options[id]!) }
    }

    subscript(id: NodeID) -> RaftCore { cores[id]! }

    /// Runs `body` on node `id`'s core, then delivers everything that follows.
    @discardableResult
    func with<T>(_ id: NodeID, _ body: (inout RaftCore) -> T) -> T {
        let result = body(&cores[id]!)
        flush()
        return result
    }

    /// Only nodes in the same group hear each other (on top of `drop`'s own rule).
    func partition(_ groups: [[NodeID]], alsoDrop: @escaping (Message) -> Bool = { _ in false }) {
        drop = { m in
            !groups.contains { $0.contains(m.from) && $0.contains(m.to) } || alsoDrop(m)
        }
    }

    func heal() {
        drop = { _ in false }
    }

    /// Ticks `id` `times` times, delivering what it sends; `quietly` loses it instead (the
    /// node's clock runs while nobody hears it).
    func tick(_ id: NodeID, times: Int = 1, quietly: Bool = false) {
        for _ in 0..<times {
            cores[id]!.tick()
            if quietly { _ = settle(id) } else { flush() }
        }
    }

    /// Loses everything `id` had not persisted and starts it again from its storage, as a
    /// process started anew (with a new random seed, as the node draws one per start).
    func restart(_ id: NodeID) {
        boots[id, default: 0] += 1
        var o = options[id]!
        o.seed &+= boots[id]! &* 0x9E37_79B9
        o.applied = storages[id]!.hardState.commit
        cores[id] = RaftCore(storage: storages[id]!, options: o)
        reads[id] = []
    }

    /// Delivers the messages held back so far that `which` selects, and what follows them.
    func release(where which: (Message) -> Bool = { _ in true }) {
        let now = held.filter(which)
        held.removeAll(where: which)
        deliver(now)
    }

    /// Persists and sends until nothing is left to deliver.
    func flush() {
        var out: [Message] = []
        for id in cores.keys.sorted() { out += settle(id) }
        deliver(out)
    }

    private func deliver(_ messages: [Message]) {
        var queue = messages
        while !queue.isEmpty {
            let m = queue.removeFirst()
            if drop(m) || cores[m.to] == nil { continue }
            if hold(m) {
                held.append(m)
                continue
            }
            cores[m.to]!.step(m)
            queue += settle(m.to)
        }
    }

    /// Carries out `id`'s readies as the node does; returns what it sent.
    private func settle(_ id: NodeID) -> [Message] {
        var sent: [Message] = []
        let storage = storages[id]!
        while cores[id]!.hasReady {
            let ready = cores[id]!.ready()
            if let snapshot = ready.snapshot { storage.applySnapshot(snapshot) }
            storage.append(ready.entries)
            if let hardState = ready.hardState { storage.setHardState(hardState) }
            sent += ready.leaderMessages + ready.messages
            for entry in ready.committedEntries {
                if let known = committed[entry.index] {
                    if known != entry {
                        safetyViolations.append("node \(id) committed \(entry.index)/term \(entry.term) where term \(known.term) was committed")
                    }
                } else {
                    committed[entry.index] = entry
                }
            }
            reads[id, default: []] += ready.readStates
            cores[id]!.advance(ready)
        }
        return sent
    }

    /// Elects `id`: the others forget their leader's lease (their clocks run past it while
    /// nobody hears them), then `id` campaigns.
    func elect(_ id: NodeID, among group: [NodeID]) {
        for other in group where other != id {
            tick(other, times: options[other]!.electionTicks, quietly: true)
        }
        with(id) { $0.campaign() }
    }

    /// Proposes `data` through leader `id` and delivers what follows; its index.
    @discardableResult
    func propose(_ id: NodeID, _ data: String) -> Index? {
        var index: Index?
        with(id) { core in
            if core.propose([Array(data.utf8)]) { index = core.lastIndex }
        }
        return index
    }
}
