/// How one server runs the protocol. Times are in ticks: the application decides how long a
/// tick is (the node uses 10 ms; the simulator's clock is virtual).
public struct RaftOptions: Sendable {
    public var id: NodeID
    /// A follower that hears nothing for this long (plus a random extra of up to as much
    /// again) starts an election; a leader that hears from no majority for this long steps
    /// down (check-quorum).
    public var electionTicks: Int = 10
    public var heartbeatTicks: Int = 1
    /// Upper bound on the entry bytes in one AppendEntries.
    public var maxMessageBytes: Int = 1 << 20
    /// AppendEntries in flight to one follower before the leader waits for acknowledgements.
    public var maxInflightMessages: Int = 256
    /// Upper bound on the committed entry bytes handed out in one `Ready`.
    public var maxApplyBytes: Int = 64 << 20
    public var preVote: Bool = true
    public var checkQuorum: Bool = true
    /// What a peer's message may carry; anything beyond is refused (`Refusal`).
    public var limits = MessageLimits()
    /// Seeds the election-timeout jitter, so a simulation replays exactly.
    public var seed: UInt64
    /// The index the application has already applied (on restart).
    public var applied: Index = 0
    #if CHORUS_TESTING
    /// Test-only, and wrong on purpose: commit once this many voters hold an entry, of any
    /// term, instead of a majority holding one of the current term. It exists so tests can
    /// show that the simulator's checker catches a broken commit rule. Only test builds have
    /// it (see `PlantedBug`).
    public var unsafeCommitQuorum: Int? = nil
    /// Bugs planted back on purpose, so tests can show the simulator finds them. Only test
    /// builds have it.
    public var plantedBugs: Set<PlantedBug> = []
    #endif

    public init(id: NodeID, seed: UInt64, electionTicks: Int = 10, heartbeatTicks: Int = 1) {
        self.id = id
        self.seed = seed
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
    }
}

/// SplitMix64: a tiny, fast, well-distributed generator; good enough for timeout jitter and
/// fully determined by its seed. Public so simulations and property tests draw from the same
/// generator as the core.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(state: UInt64) {
        self.state = state
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
