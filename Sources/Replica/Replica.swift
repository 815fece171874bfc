import Dispatch
import Foundation
import Logging
import Mailbox
import Raft
import Synchronization

/// Drives one Raft core from a single dedicated thread: ticks, peer messages, proposals and
/// reads go in through `submit`; each turn of the loop takes every queued input at once,
/// persists the resulting `Ready` in one fsynced LMDB transaction (group commit), sends,
/// applies and answers.
///
/// A thread rather than a task: an fsync blocks, and blocking one of the few cooperative
/// threads would stall every gRPC handler on the machine.
///
/// Generic over what it replicates (`StateMachine`): the node runs it over the chat
/// projections (`ChatReplica`), its tests over a machine of their own.
public final class Replica<Machine: StateMachine>: Sendable {
    public typealias Output = Machine.Output

    enum Input {
        case messages([Message])
        /// A peer's stream to this node ended (see `connectionLost(to:)`).
        case connectionLost(NodeID)
        case propose([UInt8], Reply<Output>)
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

    typealias Reply<T> = ReplicaReply<T>

    /// Runs work off the loop's thread (a snapshot being taken): on a thread of its own in the
    /// node; a simulation runs it itself, at a moment its seed decides.
    package typealias OffLoop = @Sendable (@escaping @Sendable () -> Void) -> Void
    package static var onThreadOfItsOwn: OffLoop { { work in Thread.detachNewThread(work) } }

    /// What the loop has to do, taken all at once each turn. Bounded: proposals are admitted
    /// against their own, smaller limit first (`PendingProposals`), so the bound is met only by
    /// a flood of peer messages or status calls, and then those are turned away (Raft resends).
    private let inbox = Mailbox<Input>(capacity: Replica.inboxCapacity)
    static var inboxCapacity: Int { 100_000 }
    /// See `propose(_:reply:)`.
    private let pending = PendingProposals()
    private let limits: (proposals: Int, bytes: Int, reads: Int)
    /// Reads admitted and not yet answered (see `linearizableRead`).
    private let pendingReads = Atomic<Int>(0)
    private let loop: Loop
    /// What the log is applied to.
    public let machine: Machine
    public let id: NodeID
    /// Peer messages refused, here or by the peer service.
    package let refusals: PeerRefusals
    /// Where the client API's handlers run: a handler that waits here is resumed on its own
    /// connection's loop.
    let handlers: (any CallerHomes)?
    /// The leader as the loop last saw it.
    private let leaderSeen: LeaderSeen

    /// `acknowledgeOnAppend` plants a bug for the fault-injection suite to find (see
    /// `ChatMachine.acknowledgeSendOnAppend`); nil everywhere else.
    package init(core: RaftCore, storage: any ReplicaLog, snapshots: Machine.Snapshots, machine: Machine, transport: any MessageSender, options: ReplicaOptions,
         metrics: ReplicaMetrics = ReplicaMetrics(), handlers: (any CallerHomes)? = nil,
         acknowledgeOnAppend: (@Sendable ([UInt8], Index) -> Output?)? = nil, clock: any ReplicaClock = SystemClock(),
         offLoop: @escaping OffLoop = Replica.onThreadOfItsOwn, logger: Logger) throws {
        id = core.id
        self.machine = machine
        self.handlers = handlers
        refusals = PeerRefusals(logger: logger)
        limits = (options.maxPendingProposals, options.maxPendingProposalBytes, options.maxPendingReads)
        leaderSeen = LeaderSeen()
        loop = try Loop(core: core, storage: storage, snapshots: snapshots, machine: machine, transport: transport, refusals: refusals, options: options,
                        metrics: metrics, leaderSeen: leaderSeen, acknowledgeOnAppend: acknowledgeOnAppend, clock: clock, offLoop: offLoop, logger: logger)
        // Work done off the loop's thread (a snapshot) hands its result back this way.
        loop.submit = { [weak self] input in self?.submit(input) }
    }

    /// Runs the loop on its own thread until `stop()`; returns when it has ended. Throws
    /// `MachineRefusal` when the loop stopped by itself at an entry this build cannot apply.
    package func run() async throws {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                // Named for `top -H`, perf and /proc: Foundation's `name` does not reach the
                // kernel here, and the thread would carry its creator's name.
                try? "chorus-raft".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                loop.run(take: { timeout in self.take(timeout: timeout) })
                if loop.stoppedBecause != nil {
                    // Stopped by itself: nothing more is taken, so every caller still waiting
                    // or yet to come is told at once rather than left hanging.
                    inbox.finish()
                    while let inputs = inbox.take(waitingAtMost: .zero), !inputs.isEmpty {
                        for input in inputs { refuse(input, .stopped) }
                    }
                }
                done.resume()
            }
            thread.start()
        }
        if let reason = loop.stoppedBecause { throw reason }
    }

    /// The loop takes what is left, then ends.
    package func stop() {
        inbox.finish()
    }

    // MARK: Turned by a simulation

    /// For a simulation that turns the loop itself, on its own clock, instead of `run()`'s
    /// thread: takes what is queued (without waiting) and runs one turn of the production
    /// loop. False once the loop stopped by itself (then `finishTurning()`), or was finished.
    func turnQueued() -> Bool {
        guard let inputs = inbox.take(waitingAtMost: .zero) else { return false }
        return loop.turn(inputs)
    }

    /// Why the loop stopped by itself, once it has (nil while it runs).
    var stoppedBecause: (any Error)? { loop.stoppedBecause }

    /// Ends a loop a simulation turned, as `run()` ends it: callers still waiting are told it
    /// stopped (a simulated crash skips this, as SIGKILL would).
    func finishTurning() {
        inbox.finish()
        loop.finish()
    }

    private func take(timeout: Duration) -> [Input]? {
        inbox.take(waitingAtMost: timeout)
    }

    func submit(_ input: Input) {
        guard !inbox.push(input) else { return }
        refuse(input, inbox.waiting >= Self.inboxCapacity ? .overloaded(proposals: Self.inboxCapacity, bytes: 0) : .stopped)
    }

    /// Answers an input the loop will not take.
    private func refuse(_ input: Input, _ error: ReplicaError) {
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
    public func propose(_ command: [UInt8]) async throws(ReplicaError) -> Output {
        let home = handlers?.current()
        let result: Result<Output, ReplicaError> = await withCheckedContinuation { continuation in
            propose(command) { resumeCaller(continuation, returning: $0, at: home) }
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
    public func propose(_ command: [UInt8], reply: @escaping @Sendable (Result<Output, ReplicaError>) -> Void) {
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

    /// Reads admitted and not yet answered.
    var pendingReadCount: Int { pendingReads.load(ordering: .relaxed) }

    /// Proposals admitted and not yet answered, and their bytes.
    public var pendingProposals: (count: Int, bytes: Int) {
        pending.withLock { ($0.count, $0.bytes) }
    }

    /// Waits until this node may serve a linearizable read: it confirmed with a majority that
    /// it still leads, and has applied everything committed before the read began.
    ///
    /// At most `maxPendingReads` wait at once; past them a read fails at once with
    /// `.readsOverloaded`, as a proposal past its limits does.
    public func linearizableRead() async throws(ReplicaError) {
        let admitted = pendingReads.add(1, ordering: .relaxed).newValue
        defer { pendingReads.subtract(1, ordering: .relaxed) }
        guard admitted <= limits.reads else { throw .readsOverloaded(reads: limits.reads) }
        let home = handlers?.current()
        let result: Result<Void, ReplicaError> = await withCheckedContinuation { continuation in
            submit(.read { resumeCaller(continuation, returning: $0, at: home) })
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

/// How the replica answers a caller, once: from the loop's thread, so it must not block.
package typealias ReplicaReply<T> = @Sendable (Result<T, ReplicaError>) -> Void

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
package protocol MessageSender: Sendable {
    func send(_ messages: [Message])
    /// The membership changed (told before any message of the ready that changed it): the
    /// node's links to open and close.
    func configurationChanged(_ configuration: ClusterConfiguration)
}

extension MessageSender {
    func configurationChanged(_ configuration: ClusterConfiguration) {}
}

