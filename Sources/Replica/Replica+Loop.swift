import Foundation
import Logging
import Metrics
import Raft

extension Replica {
    /// The loop's state. Confined to the loop's thread: nothing else touches it.
    final class Loop: ReadyEffects, @unchecked Sendable {
        var core: RaftCore
        let storage: any ReplicaLog
        let snapshotStore: Machine.Snapshots
        let machine: Machine
        let transport: any MessageSender
        let refusals: PeerRefusals
        let options: ReplicaOptions
        let metrics: ReplicaMetrics
        let leaderSeen: LeaderSeen
        let acknowledgeOnAppend: (@Sendable ([UInt8], Index) -> Output?)?
        let logger: Logger
        let clock: any ReplicaClock
        let offLoop: OffLoop
        /// Ticks until the followers' replication gauges are next updated.
        var ticksToPeerMetrics = 0
        /// When the free space of `options.watchedDirectories` was last looked at.
        var lastSpaceCheck: ContinuousClock.Instant?

        /// Proposals, reads and membership changes waiting for their answer.
        var requests = PendingRequests<Output>()
        var appliedIndex: Index
        /// The order of a ready's effects, and the commit-only hard state held back from disk
        /// until the next write that must be fsynced anyway, or shutdown (`ReadyHandling`).
        var readyHandling = ReadyHandling()
        /// The term whose leader-start commands (`StateMachine.leadershipChanged`) this node
        /// proposed: once per term it leads, before any client's command.
        var leaderCommandsTerm: Term = 0
        /// The membership as of `appliedIndex`, recorded with the projections so that a
        /// snapshot of them carries it.
        var appliedConfiguration: ClusterConfiguration
        var snapshots: SnapshotSchedule
        /// The configuration the directory and the links were last told of, and its version
        /// (`RaftCore.configurationVersion`): checked on every turn, so an integer compare.
        var knownConfiguration = ClusterConfiguration()
        var knownConfigurationVersion: UInt64 = .max
        /// Membership changes asked of this leader before an entry of its term committed (a
        /// moment after its election): the core takes none until then (`RaftCore.
        /// proposeConfigurationChange`), so they wait here and are proposed when it has.
        var membershipWaitingForTerm: [(request: MembershipRequest, reply: ReplicaReply<Index>, deadline: ContinuousClock.Instant)] = []
        /// Hands inputs back to the loop from work done off its thread.
        var submit: @Sendable (Input) -> Void = { _ in }
        /// Why the loop stopped by itself: an entry this build cannot apply (`MachineRefusal`) or
        /// a disk that failed (`StorageFailure`). The node stops with it.
        var stoppedBecause: (any Error)?
        /// This node's Raft state as the readies so far left it, to check the next against.
        var invariants: Invariants

        init(core: RaftCore, storage: any ReplicaLog, snapshots: Machine.Snapshots, machine: Machine, transport: any MessageSender, refusals: PeerRefusals,
             options: ReplicaOptions, metrics: ReplicaMetrics, leaderSeen: LeaderSeen,
             acknowledgeOnAppend: (@Sendable ([UInt8], Index) -> Output?)?, clock: any ReplicaClock, offLoop: @escaping OffLoop, logger: Logger) throws {
            self.core = core
            self.clock = clock
            self.offLoop = offLoop
            self.metrics = metrics
            self.leaderSeen = leaderSeen
            self.storage = storage
            snapshotStore = snapshots
            self.machine = machine
            self.transport = transport
            self.refusals = refusals
            self.options = options
            self.acknowledgeOnAppend = acknowledgeOnAppend
            self.logger = logger
            let position = try machine.position()
            appliedIndex = position.index
            invariants = Invariants(hardState: storage.initialState().0, applied: position.index)
            appliedConfiguration = ClusterConfiguration(encoded: position.configuration) ?? storage.snapshotMetadata().configuration
            self.snapshots = SnapshotSchedule(lastIndex: storage.snapshotMetadata().index)
            nextTick = clock.now + options.tickInterval
        }

        /// When the next tick is due.
        var nextTick: ContinuousClock.Instant

        /// Runs turns until the inputs end (`take` returns nil) or the loop stops by itself;
        /// `take` waits at most until the next tick.
        func run(take: (Duration) -> [Input]?) {
            while true {
                let now = clock.now
                guard let inputs = take(now < nextTick ? nextTick - now : .zero), turn(inputs) else { break }
            }
            finish()
        }

        /// One turn of the loop: takes `inputs`, ticks when a tick is due, and handles every
        /// ready that results. Returns false once the loop has stopped by itself (a disk that
        /// failed, an entry this build cannot apply, a broken invariant); `finish()` then ends it.
        /// The thread of `run` turns it in production; a simulation turns it itself.
        func turn(_ inputs: [Input]) -> Bool {
            running: do {
                var batch: [([UInt8], Reply<Output>)] = []
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
                if stoppedBecause != nil {
                    // Proposals taken with the input that stopped the loop never reached
                    // `requests`: answered here, or their callers would wait forever.
                    for (_, reply) in batch { reply(.failure(.stopped)) }
                    break running
                }
                if !batch.isEmpty { propose(batch) }
                if clock.now >= nextTick {
                    core.tick()
                    nextTick = nextTick + options.tickInterval
                    if nextTick < clock.now { nextTick = clock.now + options.tickInterval }
                    expire()
                    checkFreeSpace()
                    if stoppedBecause != nil { break running }
                    ticksToPeerMetrics -= 1
                    if ticksToPeerMetrics <= 0 {
                        ticksToPeerMetrics = 10
                        recordPeers()
                        askAgainForReads()
                    }
                }
                let turned = core.hasReady
                while core.hasReady {
                    do {
                        try handleReady()
                    } catch let violation as InvariantViolation {
                        stop(because: violation)
                        break running
                    } catch let refusal as any MachineRefusal {
                        // An entry or a snapshot this build cannot apply: say so and end.
                        logger.critical("\(refusal)", metadata: ["index": "\(refusal.index)"])
                        stoppedBecause = refusal
                        break running
                    } catch {
                        // The log or the projections could not be written: continuing would
                        // risk acknowledging what is not durable. Nothing of this ready's
                        // messages went out after the failed write.
                        stop(because: error as? StorageFailure ?? StorageFailure(doing: "writing the Raft log", error: error))
                        break running
                    }
                }
                if turned {
                    metrics.recordProgress(term: core.term, commit: core.commitIndex, applied: appliedIndex, last: core.lastIndex)
                }
                return true
            }
            return false
        }

        /// Ends the loop: the commit index not yet written goes to disk, and every caller still
        /// waiting is told the replica stopped.
        func finish() {
            if let held = readyHandling.takeHeld() {
                try? storage.persist(hardState: held, entries: [])
            }
            failAll(.stopped)
            snapshots.failWaiters(.stopped)
            machine.stopped()
        }

        /// Stops the node while the disk still has room when a file system holding its data
        /// runs low, at most every 100 ms (one statvfs each).
        func checkFreeSpace() {
            let now = clock.now
            if let last = lastSpaceCheck, now - last < .milliseconds(100) { return }
            lastSpaceCheck = now
            for directory in options.watchedDirectories {
                guard let space = StorageFailure.space(of: directory), space.available < options.minimumFreeSpace else { continue }
                let low = LowFreeSpace(path: directory, space: space, minimum: options.minimumFreeSpace)
                return stop(because: StorageFailure(doing: "keeping room to write", error: low))
            }
        }

        /// Ends the loop by itself (a disk that failed, a broken invariant): said once, at
        /// critical level, in the operator's words; the node stops with it.
        func stop(because failure: some Error & CustomStringConvertible) {
            logger.critical("\(failure)")
            stoppedBecause = failure
        }

        static func isElectionTraffic(_ message: Message) -> Bool {
            switch message.kind {
            case .preVote, .preVoteResponse, .vote, .voteResponse, .timeoutNow: true
            default: false
            }
        }

        // MARK: Requests

        func propose(_ batch: [([UInt8], Reply<Output>)]) {
            // A request that finds this node leading before its ready has announced it still
            // goes after the leader's own first commands (a new leader's detach-all must not
            // follow, and so undo, an attach that reached it first).
            if core.isLeader { proposeLeaderCommands() }
            guard core.isLeader, core.propose(batch.map(\.0)) else {
                metrics.proposalsNotLeader.increment(by: batch.count)
                for (_, reply) in batch { reply(.failure(.notLeader(leader: knownLeader))) }
                return
            }
            let deadline = clock.now + options.proposalTimeout
            var index = core.lastIndex - Index(batch.count) + 1
            for (command, reply) in batch {
                if let acknowledgeOnAppend, let output = acknowledgeOnAppend(command, index) {
                    reply(.success(output))
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
            let now = clock.now
            let context = requests.read(.init(term: core.term, deadline: now + options.proposalTimeout, reply: reply), now: now)
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

        /// Asks the leader again for a follower's reads it has not confirmed within two election
        /// timeouts: a request or answer lost with a broken connection would otherwise hold its
        /// caller for the whole proposal timeout while the leader is alive and well. A leader's
        /// own reads need no asking: its heartbeats carry the round out until it is confirmed.
        func askAgainForReads() {
            guard !core.isLeader, core.leader != 0 else { return }
            let now = clock.now
            let patience = options.tickInterval * (2 * options.electionTicks)
            for context in requests.readsToAskAgain(askedBefore: now - patience, now: now) {
                metrics.readsAskedAgain.increment()
                core.readIndex(context: context)
            }
        }

        /// Fails requests that waited too long: their outcome is unknown to the client.
        func expire() {
            proposeMembershipWaitingForTerm()
            let expired = requests.expire(now: clock.now)
            guard !expired.isEmpty else { return }
            metrics.proposalsTimedOut.increment(by: expired.proposals.count)
            expired.fail(.timedOut)
        }

        func failAll(_ error: ReplicaError) {
            let all = requests.removeAll()
            let waiting = membershipWaitingForTerm
            membershipWaitingForTerm = []
            for (_, reply, _) in waiting { reply(.failure(error)) }
            if case .stopped = error { metrics.proposalsStopped.increment(by: all.proposals.count) } else { metrics.proposalsLeadershipLost.increment(by: all.proposals.count) }
            all.fail(error)
        }

        // MARK: Ready

        func handleReady() throws {
            membershipMayHaveChanged()
            let ready = core.ready()
            try invariants.check(ready)
            if let soft = ready.softState { leadershipChanged(soft) }
            readyHandling.start(ready, self)
            try readyHandling.finish(ready, self)
            if !membershipWaitingForTerm.isEmpty { proposeMembershipWaitingForTerm() }
        }

        /// The write a ready asks for (`ReadyEffects`): a snapshot installed, or entries and
        /// the hard state fsynced in one LMDB transaction.
        func write(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
            if let snapshot {
                try StorageFailure.wrapping(doing: "installing the leader's snapshot at \(snapshot.metadata.index)") {
                    try install(snapshot, hardState: hardState, entries: entries)
                }
                return
            }
            let started = clock.now
            try storage.persist(hardState: hardState, entries: entries)
            metrics.logWrite.record(duration: clock.now - started)
            if !entries.isEmpty { metrics.persistedEntries.record(entries.count) }
        }

        func send(_ messages: [Message]) {
            transport.send(messages)
        }

        /// Reads confirmed by this ready, and any waiting for what it applied.
        func confirm(_ readStates: [ReadState]) {
            requests.confirm(readStates)
            answerReads()
        }

        func advance(_ ready: Ready) {
            core.advance(ready)
        }

        /// Applies committed entries. Each comes once, in order, right after what the machine
        /// holds: the core starts from the machine's position (`RaftOptions.applied`), and
        /// `invariants` checked the ready that carries them.
        func apply(_ entries: [Entry]) throws {
            guard let first = entries.first?.index, let last = entries.last?.index else { return }
            var batch: [CommittedLogEntry] = []
            batch.reserveCapacity(entries.count)
            for entry in entries {
                var committed = CommittedLogEntry(index: entry.index, term: entry.term, command: entry.kind == .normal && !entry.data.isEmpty ? entry.data : nil)
                if entry.kind == .configuration {
                    guard let change = ConfigurationChange(encoded: entry.data) else {
                        // Every build that wrote one decodes it: a newer build's change.
                        throw machine.undecodableEntry(at: entry.index, what: "a configuration change this build cannot decode")
                    }
                    appliedConfiguration = appliedConfiguration.applying(change)
                    committed.configuration = appliedConfiguration.encoded()
                    membershipApplied(entry.index, change)
                }
                batch.append(committed)
            }
            let started = clock.now
            // The projections could not take what every other replica applies: going on would
            // let this one differ without a word. Nothing of the batch was written; a restart
            // applies it again from the log (or the node stops at an entry it cannot apply).
            let results = try StorageFailure.wrapping(doing: "applying entries \(first)...\(last) to the projections") {
                try machine.apply(batch)
            }
            metrics.applyDuration.record(duration: clock.now - started)
            metrics.appliedEntries.record(batch.count)
            appliedIndex = max(appliedIndex, last)
            maybeSnapshot()
            for (index, output) in results {
                // The entries are consecutive (`invariants`): the term of each is at its offset.
                let term = index >= first && index <= last ? entries[Int(index - first)].term : nil
                switch requests.proposalApplied(at: index, term: term) {
                case let .applied(reply)?:
                    metrics.proposalsCommitted.increment()
                    reply(.success(output))
                case let .superseded(reply)?:
                    metrics.proposalsLeadershipLost.increment()
                    reply(.failure(.leadershipLost(leader: knownLeader)))
                case nil:
                    break
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
            // The machine hears first, so that a caller told leadership was lost finds the
            // machine already knows it.
            if soft.role == .leader {
                proposeLeaderCommands()
            } else {
                _ = machine.leadershipChanged(leading: false)
                failAll(.leadershipLost(leader: soft.leader == 0 ? nil : soft.leader))
            }
        }

        /// Proposes the machine's commands for the start of this node's term, once per term.
        func proposeLeaderCommands() {
            guard core.isLeader, leaderCommandsTerm != core.term else { return }
            let commands = machine.leadershipChanged(leading: true)
            // Refused only while leadership is being handed over, when the clients' commands
            // are refused too: tried again with the next proposal or ready.
            if commands.isEmpty || core.propose(commands) { leaderCommandsTerm = core.term }
        }
    }
}
