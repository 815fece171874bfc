/// What a node does with a `Ready`: the effects, which the node and each simulation provide.
/// Only `ReadyHandling` calls them, in the order Raft's safety needs.
public protocol ReadyEffects: AnyObject {
    /// Hands messages to the network; never blocks.
    func send(_ messages: [Message])
    /// Makes `snapshot`, `entries` and `hardState` (nil when it did not change) durable, in
    /// one write, before it returns; a snapshot is installed into the state machine too.
    func write(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws
    /// Applies committed entries, each once and in order.
    func apply(_ entries: [Entry]) throws
    /// Reads whose leadership was confirmed: served once applied up to their index. Called
    /// for every ready, after its entries are applied, with no read states too.
    func confirm(_ readStates: [ReadState])
    /// Tells the core that everything `ready` asked is done (`RaftCore.advance`).
    func advance(_ ready: Ready)
}

/// The one copy of how a node handles a ready, which the replica loop runs in production and
/// the Raft simulation runs against its simulated disk. The order is `Ready`'s:
/// 1. `start`: the leader's AppendEntries go out while its own write runs (its own log is one
///    of the majority it counts, only once written);
/// 2. `finish`: the write, then the other messages (votes and acknowledgements promise what
///    is on disk), then apply, read states, and `advance`.
///
/// A hard state that only moved the commit index is not worth an fsync: it is held here and
/// goes to disk with the next write that must sync, or at a clean stop (`held`). A crash loses
/// it, and the node learns the commit index again from the leader.
public struct ReadyHandling {
    /// The newest commit-only hard state not yet written.
    public private(set) var held: HardState?

    public init() {}

    /// Step 1, before the write: the leader's replication traffic.
    public func start(_ ready: Ready, _ effects: some ReadyEffects) {
        effects.send(ready.leaderMessages)
    }

    /// Steps 2 to 5: everything after the leader's messages. A simulation with a slow disk calls
    /// it later than `start`; the node calls both at once. When a write or an apply throws,
    /// nothing after it happens, and the core is not advanced.
    public mutating func finish(_ ready: Ready, _ effects: some ReadyEffects) throws {
        if ready.mustSync {
            // Taken before the write: once a snapshot is written, an older commit-only hard
            // state must never be written over it, even by a stop after a failed install.
            let hardState = ready.hardState ?? held
            held = nil
            try effects.write(hardState: hardState, entries: ready.entries, snapshot: ready.snapshot)
        } else if let hardState = ready.hardState {
            held = hardState
        }
        effects.send(ready.messages)
        if !ready.committedEntries.isEmpty { try effects.apply(ready.committedEntries) }
        effects.confirm(ready.readStates)
        effects.advance(ready)
    }

    /// The held hard state, taken for a clean stop to write; nil once taken.
    public mutating func takeHeld() -> HardState? {
        defer { held = nil }
        return held
    }

    /// A crash: what was held is lost with the process.
    public mutating func crash() {
        held = nil
    }
}
