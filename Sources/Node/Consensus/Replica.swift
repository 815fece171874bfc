import Dispatch
import Foundation
import Logging
import Mailbox
import Metrics
import NIOExecutor
import Projections
import Raft
import Synchronization

/// Drives one Raft core from a single dedicated thread: ticks, peer messages, proposals and
/// reads go in through `submit`; each turn of the loop takes every queued input at once,
/// persists the resulting `Ready` in one fsynced LMDB transaction (group commit), sends,
/// applies and answers.
///
/// A thread rather than a task: an fsync blocks, and blocking one of the few cooperative
/// threads would stall every gRPC handler on the machine.
public final class Replica: Sendable {
    enum Input {
        case messages([Message])
        /// A peer's stream to this node ended (see `connectionLost(to:)`).
        case connectionLost(NodeID)
        case propose([UInt8], Reply<Applied>)
        case read(Reply<Void>)
        case transfer(NodeID)
        case status(Reply<ReplicaStatus>)
        /// An operator asks for a snapshot now.
        case takeSnapshot(Reply<SnapshotReport>)
        /// A snapshot taken off the loop's thread is stored (or failed).
        case snapshotTaken(Result<SnapshotInfo, SnapshotFailure>, started: ContinuousClock.Instant)
        /// An operator changes the membership; answered with the entry's index once applied.
        case changeMembership(MembershipRequest, Reply<Index>)
    }

    typealias Reply<T> = @Sendable (Result<T, ReplicaError>) -> Void

    /// What the loop has to do, taken all at once each turn. Bounded: proposals are admitted
    /// against their own, smaller limit first (`PendingProposals`), so the bound is met only by
    /// a flood of peer messages or status calls, and then those are turned away (Raft resends).
    private let inbox = Mailbox<Input>(capacity: Replica.inboxCapacity)
    static let inboxCapacity = 100_000
    /// See `propose(_:reply:)`.
    private let pending = PendingProposals()
    private let limits: (proposals: Int, bytes: Int)
    private let loop: Loop
    public let events: EventHub
    public let id: NodeID
    /// Peer messages refused, here or by the peer service.
    let refusals: PeerRefusals
    /// Where the client API's handlers run: a handler that waits here is resumed on its own
    /// connection's loop.
    let handlers: EventLoopExecutor?
    /// The leader as the loop last saw it.
    private let leaderSeen: LeaderSeen

    init(core: RaftCore, storage: LogStoreAdapter, data: DataDirectory, current: CurrentState, transport: any MessageSender, configuration: NodeConfiguration,
         metrics: NodeMetrics = NodeMetrics(node: 0), handlers: EventLoopExecutor? = nil, logger: Logger) {
        id = core.id
        self.handlers = handlers
        events = EventHub(limits: configuration.subscriptionLimits)
        refusals = PeerRefusals(logger: logger)
        limits = (configuration.maxPendingProposals, configuration.maxPendingProposalBytes)
        leaderSeen = LeaderSeen()
        loop = Loop(core: core, storage: storage, data: data, current: current, transport: transport, events: events, refusals: refusals, configuration: configuration,
                    metrics: metrics, leaderSeen: leaderSeen, logger: logger)
    }

    /// Runs the loop on its own thread until `stop()`; returns when it has ended.
    func run() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                // Named for `top -H`, perf and /proc: Foundation's `name` does not reach the
                // kernel here, and the thread would carry its creator's name.
                try? "chorus-raft".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                loop.run(take: { timeout in self.take(timeout: timeout) }, submit: { [weak self] input in self?.submit(input) })
                done.resume()
            }
            thread.start()
        }
    }

    /// The loop takes what is left, then ends.
    func stop() {
        inbox.finish()
    }

    private func take(timeout: Duration) -> [Input]? {
        inbox.take(waitingAtMost: timeout)
    }

    func submit(_ input: Input) {
        guard !inbox.push(input) else { return }
        let error: ReplicaError = inbox.waiting >= Self.inboxCapacity ? .overloaded(proposals: Self.inboxCapacity, bytes: 0) : .stopped
        switch input {
        case let .propose(_, reply): reply(.failure(error))
        case let .read(reply): reply(.failure(error))
        case let .status(reply): reply(.failure(error))
        case let .takeSnapshot(reply): reply(.failure(error))
        case let .changeMembership(_, reply): reply(.failure(error))
        case .messages, .connectionLost, .transfer, .snapshotTaken: break
        }
    }

    // MARK: The API the services use

    /// Feeds messages from a peer: one hand-off to the loop for a whole batch.
    public func receive(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        submit(.messages(messages))
    }

    /// The stream a peer sends this node its messages on ended. When the peer is the leader,
    /// the process most likely died (the kernel closes a killed process's connections at
    /// once): this node campaigns within a fraction of the election timeout instead of
    /// waiting all of it out (`RaftCore.connectionLost`).
    public func connectionLost(to peer: NodeID) {
        submit(.connectionLost(peer))
    }

    /// Proposes an encoded command and waits until it is applied (here, so its result is
    /// known), or fails: not the leader, leadership lost, timed out.
    public func propose(_ command: [UInt8]) async throws(ReplicaError) -> Applied {
        let home = handlers?.currentLoop
        let result: Result<Applied, ReplicaError> = await withCheckedContinuation { continuation in
            propose(command) { EventLoopExecutor.resume(continuation, returning: $0, on: home) }
        }
        return try result.get()
    }

    /// Proposes an encoded command; `reply` is called once with its outcome (from the Raft
    /// loop's thread: it must not block). For callers with many proposals in flight, which
    /// would otherwise hold a task each.
    ///
    /// Admission is bounded (etcd's MaxUncommittedEntriesSize is the model): proposals taken
    /// and not yet answered (waiting in the inbox, uncommitted in the log, or applied and not
    /// yet replied to) stay under `maxPendingProposals` and `maxPendingBytes`; past them a
    /// proposal fails at once with `.overloaded`, and the client backs off.
    public func propose(_ command: [UInt8], reply: @escaping @Sendable (Result<Applied, ReplicaError>) -> Void) {
        let bytes = command.count
        let (maxCount, maxBytes) = (limits.proposals, limits.bytes)
        let refused: (Int, Int)? = pending.withLock { pending in
            guard pending.count < maxCount, pending.bytes + bytes <= maxBytes || pending.count == 0 else { return (pending.count, pending.bytes) }
            pending.count += 1
            pending.bytes += bytes
            return nil
        }
        if let (count, waiting) = refused {
            reply(.failure(.overloaded(proposals: count, bytes: waiting)))
            return
        }
        submit(.propose(command) { [pending] result in
            pending.withLock { pending in
                pending.count -= 1
                pending.bytes -= bytes
            }
            reply(result)
        })
    }

    /// The leader as this node last knew it (nil while none is known), and whether it is this
    /// node: for handlers that should not start work only a leader can finish (a follower
    /// serves reads, not writes).
    public var leader: NodeID? { leaderSeen.leader }
    public var isLeader: Bool { leaderSeen.leader == id }

    /// Proposals admitted and not yet answered, and their bytes.
    public var pendingProposals: (count: Int, bytes: Int) {
        pending.withLock { ($0.count, $0.bytes) }
    }

    /// Waits until this node may serve a linearizable read: it confirmed with a majority that
    /// it still leads, and has applied everything committed before the read began.
    public func linearizableRead() async throws(ReplicaError) {
        let home = handlers?.currentLoop
        let result: Result<Void, ReplicaError> = await withCheckedContinuation { continuation in
            submit(.read { EventLoopExecutor.resume(continuation, returning: $0, on: home) })
        }
        try result.get()
    }

    public func status() async throws(ReplicaError) -> ReplicaStatus {
        let result: Result<ReplicaStatus, ReplicaError> = await withCheckedContinuation { continuation in
            submit(.status { continuation.resume(returning: $0) })
        }
        return try result.get()
    }

    public func transferLeadership(to node: NodeID) {
        submit(.transfer(node))
    }

    /// Takes a snapshot of the projections now and compacts the log behind it.
    public func takeSnapshot() async throws(ReplicaError) -> SnapshotReport {
        let result: Result<SnapshotReport, ReplicaError> = await withCheckedContinuation { continuation in
            submit(.takeSnapshot { continuation.resume(returning: $0) })
        }
        return try result.get()
    }
}

/// The leader the loop last saw, readable from any thread.
final class LeaderSeen: Sendable {
    private let value = Atomic<UInt64>(0)

    var leader: NodeID? {
        let id = value.load(ordering: .relaxed)
        return id == 0 ? nil : id
    }

    func set(_ leader: NodeID) {
        value.store(leader, ordering: .relaxed)
    }
}

/// Proposals admitted and not yet answered (a class: each reply closure holds it).
final class PendingProposals: Sendable {
    private let state = Mutex<(count: Int, bytes: Int)>((0, 0))

    func withLock<R>(_ body: (inout (count: Int, bytes: Int)) -> R) -> R {
        state.withLock { body(&$0) }
    }
}

/// Where the loop hands messages for peers; never blocks.
protocol MessageSender: Sendable {
    func send(_ messages: [Message])
    /// The configuration changed: links to open and close.
    func membersChanged(changed: [NodeID: MemberDirectory.Addresses], removed: [NodeID])
}

extension MessageSender {
    func membersChanged(changed: [NodeID: MemberDirectory.Addresses], removed: [NodeID]) {}
}

extension Replica {
    /// The loop's state. Confined to the loop's thread: nothing else touches it.
    final class Loop: @unchecked Sendable {
        var core: RaftCore
        let storage: LogStoreAdapter
        let data: DataDirectory
        let current: CurrentState
        var state: ChatState
        let transport: any MessageSender
        let events: EventHub
        let refusals: PeerRefusals
        let configuration: NodeConfiguration
        let metrics: NodeMetrics
        let leaderSeen: LeaderSeen
        let logger: Logger
        let clock = ContinuousClock()
        /// Ticks until the followers' replication gauges are next updated.
        var ticksToPeerMetrics = 0

        /// Proposals, reads and membership changes waiting for their answer.
        var requests = PendingRequests()
        var appliedIndex: Index
        /// The newest hard state whose only change was the commit index, not yet written: it
        /// goes to disk with the next write that must be fsynced anyway, or at shutdown.
        var unsavedHardState: HardState?
        /// The membership as of `appliedIndex`, recorded with the projections so that a
        /// snapshot of them carries it.
        var appliedConfiguration: ClusterConfiguration
        var snapshots: SnapshotSchedule
        /// The configuration the directory and the links were last told of, and its version
        /// (`RaftCore.configurationVersion`): checked on every turn, so an integer compare.
        var knownConfiguration = ClusterConfiguration()
        var knownConfigurationVersion: UInt64 = .max
        /// Hands inputs back to the loop from work done off its thread.
        var submit: @Sendable (Input) -> Void = { _ in }

        init(core: RaftCore, storage: LogStoreAdapter, data: DataDirectory, current: CurrentState, transport: any MessageSender, events: EventHub, refusals: PeerRefusals,
             configuration: NodeConfiguration, metrics: NodeMetrics, leaderSeen: LeaderSeen, logger: Logger) {
            self.core = core
            self.metrics = metrics
            self.leaderSeen = leaderSeen
            self.storage = storage
            self.data = data
            self.current = current
            state = current.state
            self.transport = transport
            self.events = events
            self.refusals = refusals
            self.configuration = configuration
            self.logger = logger
            let position = try? current.state.position()
            appliedIndex = position?.index ?? 0
            appliedConfiguration = position.flatMap { ClusterConfiguration(encoded: $0.configuration) } ?? storage.snapshotMetadata().configuration
            snapshots = SnapshotSchedule(lastIndex: storage.snapshotMetadata().index)
        }

        func run(take: (Duration) -> [Input]?, submit: @escaping @Sendable (Input) -> Void) {
            self.submit = submit
            var nextTick = clock.now + configuration.tickInterval
            while true {
                let now = clock.now
                guard let inputs = take(now < nextTick ? nextTick - now : .zero) else { break }
                var batch: [([UInt8], Reply<Applied>)] = []
                for input in inputs {
                    switch input {
                    case let .messages(messages):
                        for message in messages {
                            if logger.logLevel <= .debug, Self.isElectionTraffic(message) {
                                logger.debug("from \(message.from) term \(message.term): \(message.kind) (local term \(core.term), role \(core.role))")
                            }
                            if let refusal = core.step(message) {
                                refusals.record(from: message.from, refusal)
                            }
                        }
                    case let .connectionLost(peer):
                        if core.connectionLost(to: peer) {
                            metrics.leaderConnectionsLost.increment()
                            logger.info("the stream from leader \(peer) closed; campaigning soon unless it is heard from again", metadata: ["leader": "\(peer)"])
                        }
                    case let .propose(command, reply): batch.append((command, reply))
                    case let .read(reply): startRead(reply)
                    case let .transfer(node): core.transferLeadership(to: node)
                    case let .status(reply): reply(.success(status()))
                    case let .takeSnapshot(reply): requestSnapshot(reply)
                    case let .snapshotTaken(result, started): snapshotTaken(result, started: started)
                    case let .changeMembership(request, reply): changeMembership(request, reply)
                    }
                }
                if !batch.isEmpty { propose(batch) }
                if clock.now >= nextTick {
                    core.tick()
                    nextTick = nextTick + configuration.tickInterval
                    if nextTick < clock.now { nextTick = clock.now + configuration.tickInterval }
                    expire()
                    ticksToPeerMetrics -= 1
                    if ticksToPeerMetrics <= 0 {
                        ticksToPeerMetrics = 10
                        recordPeers()
                    }
                }
                let turned = core.hasReady
                while core.hasReady {
                    do {
                        try handleReady()
                    } catch {
                        // The log could not be written: continuing would risk acknowledging
                        // what is not durable.
                        logger.critical("cannot persist the Raft log: \(error)")
                        fatalError("cannot persist the Raft log: \(error)")
                    }
                }
                if turned {
                    metrics.recordProgress(term: core.term, commit: core.commitIndex, applied: appliedIndex, last: core.lastIndex)
                }
            }
            if let unsavedHardState {
                try? storage.persist(hardState: unsavedHardState, entries: [])
            }
            failAll(.stopped)
            snapshots.failWaiters(.stopped)
            events.closeAll(.shuttingDown)
            // The projections skip fsync on apply; flush them so a restart replays less.
            try? state.sync()
        }

        /// A planted bug, for tests only (`CHORUS_UNSAFE_ACK_ON_APPEND`): answers a send as
        /// soon as the leader appended it, before it commits, so a leader that fails loses
        /// acknowledged messages. It exists to show the fault-injection checker catches that.
        static let unsafeAckOnAppend = ProcessInfo.processInfo.environment["CHORUS_UNSAFE_ACK_ON_APPEND"] != nil

        static func isElectionTraffic(_ message: Message) -> Bool {
            switch message.kind {
            case .preVote, .preVoteResponse, .vote, .voteResponse, .timeoutNow: true
            default: false
            }
        }

        // MARK: Requests

        func propose(_ batch: [([UInt8], Reply<Applied>)]) {
            guard core.isLeader, core.propose(batch.map(\.0)) else {
                metrics.proposalsNotLeader.increment(by: batch.count)
                for (_, reply) in batch { reply(.failure(.notLeader(leader: knownLeader))) }
                return
            }
            let deadline = clock.now + configuration.proposalTimeout
            var index = core.lastIndex - Index(batch.count) + 1
            for (command, reply) in batch {
                if Self.unsafeAckOnAppend, case .sendMessage? = (try? Command(serializedBytes: command))?.kind {
                    reply(.success(Applied(index: index, outcome: .success(index), events: [], duplicate: false)))
                } else {
                    requests.propose(at: index, .init(term: core.term, deadline: deadline, reply: reply))
                }
                index += 1
            }
        }

        /// A linearizable read, here or on a follower: the leader confirms it still leads (for
        /// a follower's read, the follower asks it), and the read is answered once this node
        /// has applied the leader's commit index of that moment.
        func startRead(_ reply: @escaping Reply<Void>) {
            let context = requests.read(.init(term: core.term, deadline: clock.now + configuration.proposalTimeout, reply: reply))
            guard core.readIndex(context: context) else {
                requests.cancelRead(context)?(.failure(.notLeader(leader: knownLeader)))
                return
            }
        }

        var knownLeader: NodeID? { core.leader == 0 ? nil : core.leader }

        func status() -> ReplicaStatus {
            let configuration = core.configuration
            return ReplicaStatus(
                id: core.id, role: core.role, term: core.term, leader: core.leader,
                commitIndex: core.commitIndex, appliedIndex: appliedIndex, lastIndex: core.lastIndex,
                refusedPeerMessages: refusals.total,
                members: configuration.members.map { member in
                    ReplicaStatus.Member(id: member, voter: configuration.voters.contains(member),
                                         matchIndex: core.isLeader ? (member == core.id ? core.lastIndex : core.replication(of: member)?.match ?? 0) : 0,
                                         active: core.isLeader && (member == core.id || core.isRecentlyActive(member)))
                }
            )
        }

        /// Fails requests that waited too long: their outcome is unknown to the client.
        func expire() {
            let expired = requests.expire(now: clock.now)
            guard !expired.isEmpty else { return }
            metrics.proposalsTimedOut.increment(by: expired.proposals.count)
            expired.fail(.timedOut)
        }

        func failAll(_ error: ReplicaError) {
            let all = requests.removeAll()
            if case .stopped = error { metrics.proposalsStopped.increment(by: all.proposals.count) } else { metrics.proposalsLeadershipLost.increment(by: all.proposals.count) }
            all.fail(error)
        }

        // MARK: Ready

        func handleReady() throws {
            membershipMayHaveChanged()
            let ready = core.ready()
            if let soft = ready.softState { leadershipChanged(soft) }
            // The leader's AppendEntries go out while its own write runs.
            transport.send(ready.leaderMessages)
            let hardState = ready.hardState ?? unsavedHardState
            if let snapshot = ready.snapshot {
                try install(snapshot, hardState: hardState, entries: ready.entries)
                unsavedHardState = nil
            } else if ready.mustSync {
                let started = clock.now
                try storage.persist(hardState: hardState, entries: ready.entries)
                metrics.logWrite.record(duration: clock.now - started)
                if !ready.entries.isEmpty { metrics.persistedEntries.record(ready.entries.count) }
                unsavedHardState = nil
            } else if ready.hardState != nil {
                // Only the commit index moved: no fsync for it (see `Ready.mustSync`).
                unsavedHardState = ready.hardState
            }
            transport.send(ready.messages)
            if !ready.committedEntries.isEmpty { try apply(ready.committedEntries) }
            requests.confirm(ready.readStates)
            answerReads()
            core.advance(ready)
        }

        func apply(_ entries: [Entry]) throws {
            let batch = entries.map { entry in
                var committed = CommittedEntry(index: entry.index, term: entry.term, command: entry.kind == .normal && !entry.data.isEmpty ? entry.data : nil)
                if entry.kind == .configuration, entry.index > appliedIndex, let change = ConfigurationChange(encoded: entry.data) {
                    appliedConfiguration = appliedConfiguration.applying(change)
                    committed.configuration = appliedConfiguration.encoded()
                    membershipApplied(entry.index, change)
                }
                return committed
            }
            let results: [Applied]
            let started = clock.now
            do {
                results = try state.apply(batch)
                metrics.applyDuration.record(duration: clock.now - started)
                metrics.appliedEntries.record(batch.count)
            } catch {
                // The projections could not take what every other replica applies: going on
                // would let this one differ without a word. Nothing of the batch was written;
                // a restart applies it again from the log.
                logger.critical("cannot apply entries \(entries.first!.index)...\(entries.last!.index) to the projections: \(error); stopping this node rather than let it diverge")
                fatalError("cannot apply to the projections: \(error)")
            }
            appliedIndex = max(appliedIndex, entries.last!.index)
            maybeSnapshot()
            var terms: [Index: Term] = [:]
            for entry in entries { terms[entry.index] = entry.term }
            for applied in results {
                switch requests.proposalApplied(at: applied.index, term: terms[applied.index]) {
                case let .applied(reply)?:
                    metrics.proposalsCommitted.increment()
                    reply(.success(applied))
                case let .superseded(reply)?:
                    metrics.proposalsLeadershipLost.increment()
                    reply(.failure(.leadershipLost(leader: knownLeader)))
                case nil:
                    break
                }
                for event in applied.events {
                    events.publish(index: applied.index, event: event)
                }
            }
        }

        /// The leader's view of each follower, for the replication gauges; none elsewhere.
        func recordPeers() {
            guard core.isLeader else { return metrics.recordPeers([]) }
            let last = core.lastIndex
            metrics.recordPeers(core.configuration.members.filter { $0 != core.id }.compactMap { member in
                core.replication(of: member).map { (member, last > $0.match ? last - $0.match : 0, $0.inflight) }
            })
        }

        func answerReads() {
            for reply in requests.readsServed(upTo: appliedIndex) { reply(.success(())) }
        }

        func leadershipChanged(_ soft: SoftState) {
            logger.info("role \(soft.role), leader \(soft.leader), term \(core.term)",
                        metadata: ["term": "\(core.term)", "role": "\(soft.role)", "leader": "\(soft.leader)"])
            metrics.recordRole(soft.role, leader: soft.leader)
            leaderSeen.set(soft.leader)
            recordPeers()
            if soft.role == .leader {
                // Subscriptions lived on the previous leader: nobody is online until they
                // re-attach here.
                var command = Command()
                command.version = ChatState.commandVersion
                command.kind = .detachAll(DetachAll())
                if let bytes = try? command.serializedBytes() as [UInt8] {
                    _ = core.propose([bytes])
                }
            } else {
                failAll(.leadershipLost(leader: soft.leader == 0 ? nil : soft.leader))
                events.closeAll(.leadershipLost)
            }
        }
    }
}
