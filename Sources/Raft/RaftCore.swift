/// One server's Raft state machine. A value with no I/O, clock or thread: the application
/// feeds it ticks, messages and proposals and carries out the `Ready` it hands back. Given the
/// same inputs and seed it produces the same outputs, which is what the simulator relies on.
public struct RaftCore {
    public let id: NodeID
    let options: RaftOptions
    var log: RaftLog

    public internal(set) var term: Term = 0
    var vote: NodeID = 0
    public internal(set) var role: Role = .follower
    /// The leader of `term` as far as this server knows; 0 when unknown.
    public internal(set) var leader: NodeID = 0

    public internal(set) var configuration: ClusterConfiguration
    /// The configuration storage started from (its snapshot's, or the bootstrap one when it
    /// has none): the base the log's configuration entries apply to while storage holds no
    /// snapshot.
    let baseConfiguration: ClusterConfiguration
    /// Index of the entry that set `configuration` (0: it came from a snapshot or bootstrap).
    var configurationIndex: Index = 0
    /// Counts changes of `configuration`, so a driver can notice one without comparing it.
    public internal(set) var configurationVersion: UInt64 = 0
    /// Members the leader had heard from at its last quorum check.
    var activeAtLastCheck: Set<NodeID> = []
    /// Index of the latest configuration entry a leader proposed; no other until it commits.
    var pendingConfigurationIndex: Index = 0

    var progress: [NodeID: Progress] = [:]
    var votes: [NodeID: Bool] = [:]

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Election timeouts still to be drawn short because the leader's connection closed
    /// (`connectionLost`); none once a leader is heard.
    var quickTimeouts = 0
    var random: SplitMix64

    /// The voter this leader is handing leadership to, if a transfer is under way.
    public internal(set) var transferee: NodeID?

    var readOnly = ReadOnlyQueue()
    /// ReadIndex requests that arrived before this leader committed an entry of its term.
    var pendingReads: [ReadRequest] = []
    /// Names the leader's ReadIndex rounds on the wire; never reset, so no answer to an old
    /// round can be taken for one of a new one.
    var readRounds: UInt64 = 0
    var readStates: [ReadState] = []
    /// This follower's reads out with its leader, by the names it gave them.
    var forwardedReads: ForwardedReads

    var outbox: [Message] = []
    var leaderOutbox: [Message] = []

    var previousHardState: HardState
    var previousSoftState: SoftState

    public init(storage: any RaftStorage, options: RaftOptions) {
        id = options.id
        self.options = options
        random = SplitMix64(state: options.seed ^ (options.id &* 0x2545_F491_4F6C_DD1D))
        log = RaftLog(storage: storage, maxApplyBytes: options.maxApplyBytes)
        let (hardState, configuration) = storage.initialState()
        self.configuration = configuration
        baseConfiguration = configuration
        forwardedReads = ForwardedReads(incarnation: random.next())
        previousHardState = hardState
        previousSoftState = SoftState(leader: 0, role: .follower)
        if hardState != HardState() {
            term = hardState.term
            vote = hardState.vote
            log.commitTo(min(hardState.commit, log.lastIndex))
        }
        if options.applied > 0 {
            // What the application applied was committed, whatever commit index the hard
            // state recorded: an application may write that lazily, so it can lag. Taking
            // both from `applied` means no entry is handed back to be applied twice.
            log.commitTo(min(options.applied, log.lastIndex))
            log.appliedTo(min(options.applied, log.committed))
        }
        recomputeConfiguration(from: log.lastIndex)
        becomeFollower(term: term, leader: 0)
    }

    // MARK: Status

    public var commitIndex: Index { log.committed }
    public var appliedIndex: Index { log.applied }
    public var lastIndex: Index { log.lastIndex }
    public var firstIndex: Index { log.firstIndex }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public var softState: SoftState { SoftState(leader: leader, role: role) }
    public var isLeader: Bool { role == .leader }
    /// Whether an entry of this term has committed: until one has, a new leader's commit
    /// index may lag what earlier leaders committed, and an earlier leader's uncommitted entry
    /// may still win.
    public var committedInCurrentTerm: Bool { log.term(at: log.committed) == term }

    /// The term of the entry at `index`, when the log still holds it.
    public func term(at index: Index) -> Term? { log.term(at: index) }

    /// Whether this server may become leader: a voter of its current configuration.
    var promotable: Bool { configuration.voters.contains(id) }

    /// The leader's view of a follower: (match, next, appends in flight), for status pages
    /// and metrics.
    public func replication(of node: NodeID) -> (match: Index, next: Index, inflight: Int)? {
        progress[node].map { ($0.match, $0.next, $0.inflights.count) }
    }

    /// Whether `isRecentlyActive` has something to go on: a leader knows who answers it only
    /// after its first quorum check of this term (or when it checks no quorum, or is alone).
    public var knowsWhoIsActive: Bool {
        !options.checkQuorum || !activeAtLastCheck.isEmpty || configuration.voters == [id]
    }

    /// Whether the leader heard from `node` within the last election timeout or the one
    /// before (the flags are cleared at each quorum check, so right after one few are set).
    public func isRecentlyActive(_ node: NodeID) -> Bool {
        progress[node]?.recentActive == true || activeAtLastCheck.contains(node)
    }

    // MARK: Inputs

    /// Advances the logical clock by one tick.
    public mutating func tick() {
        if role == .leader {
            tickLeader()
        } else {
            tickElection()
        }
    }

    /// Proposes commands for the log. Returns false when this server cannot accept them
    /// (not the leader, or handing leadership over): the caller should go to the leader.
    @discardableResult
    public mutating func propose(_ payloads: [[UInt8]]) -> Bool {
        guard role == .leader, transferee == nil, !payloads.isEmpty else { return false }
        appendEntries(payloads.map { Entry(index: 0, term: 0, kind: .normal, data: $0) })
        broadcastAppend()
        return true
    }

    /// Starts an election now, as if the election timeout had passed.
    public mutating func campaign() {
        guard role != .leader, promotable else { return }
        startElection(options.preVote ? .preVote : .election)
    }

    // MARK: Ready / advance

    public var hasReady: Bool {
        softState != previousSoftState
            || (hardState != previousHardState && hardState != HardState())
            || !log.unstableEntries.isEmpty
            || log.unstable.snapshot != nil
            || !outbox.isEmpty || !leaderOutbox.isEmpty
            || log.hasNextCommittedEntries
            || !readStates.isEmpty
    }

    /// Collects the work the application must do. Call `advance` with it when done.
    public mutating func ready() -> Ready {
        var ready = Ready()
        if softState != previousSoftState { ready.softState = softState }
        if hardState != previousHardState {
            ready.hardState = hardState
            ready.hardStateMustSync = hardState.term != previousHardState.term || hardState.vote != previousHardState.vote
        }
        ready.entries = log.unstableEntries
        ready.snapshot = log.unstable.snapshot
        ready.committedEntries = log.nextCommittedEntries()
        if planted(.applyBeforeCommit), log.stableIndex > log.committed {
            ready.committedEntries = (try? log.slice(max(log.applied + 1, log.firstIndex), log.stableIndex + 1, maxBytes: .max)) ?? ready.committedEntries
        }
        ready.messages = outbox
        ready.leaderMessages = leaderOutbox
        ready.readStates = readStates
        outbox = []
        leaderOutbox = []
        readStates = []
        if let softState = ready.softState { previousSoftState = softState }
        if let hardState = ready.hardState { previousHardState = hardState }
        return ready
    }

    /// The application persisted, sent and applied what `ready` asked.
    public mutating func advance(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            log.stableSnapshotTo(snapshot.metadata.index)
            log.resetApplied(to: max(log.applied, snapshot.metadata.index))
        }
        if let last = ready.entries.last {
            log.stableTo(index: last.index, term: last.term)
            if role == .leader {
                selfPersisted(upTo: log.stableIndex)
            }
        }
        if let last = ready.committedEntries.last {
            log.appliedTo(last.index)
        }
    }

    // MARK: Role changes

    mutating func reset(term newTerm: Term) {
        if term != newTerm {
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        drawElectionTimeout()
        transferee = nil
        votes = [:]
        readOnly = ReadOnlyQueue()
        pendingReads = []
        // Answers to reads asked of another leader, or in another term, are refused anyway.
        forwardedReads.forgetAll()
        // What a leader heard in an earlier term says nothing about who is alive now.
        activeAtLastCheck = []
        resetProgress()
    }

    mutating func resetProgress() {
        progress = [:]
        for member in configuration.members {
            var p = Progress(next: log.lastIndex + 1, window: options.maxInflightMessages)
            if member == id { p.match = log.stableIndex }
            progress[member] = p
        }
    }

    mutating func becomeFollower(term: Term, leader: NodeID) {
        if leader != 0 { quickTimeouts = 0 }
        reset(term: term)
        self.leader = leader
        role = .follower
    }

    mutating func becomePreCandidate() {
        // Pre-vote changes neither term nor vote: a server cut off from the cluster can try
        // as often as it likes without disturbing anyone.
        role = .preCandidate
        votes = [:]
        leader = 0
    }

    mutating func becomeCandidate() {
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    mutating func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        quickTimeouts = 0
        // Uncommitted configuration entries from earlier terms count as pending.
        pendingConfigurationIndex = log.lastIndex
        // A no-op of this term lets the leader commit (and learn) everything before it.
        appendEntries([Entry(index: 0, term: 0)])
    }
}
