import Raft
@testable import Replica
import Synchronization
@testable import Node

/// The replica simulation's network: messages in flight, each with the simulated instant it
/// arrives; links that are cut; a lossy or congested mode; nodes waiting on their disks. The
/// loops hand it messages from their turns, on the simulation's own thread.
///
/// It also watches what goes by for two of Raft's rules that no single node can check: one
/// leader a term (only a leader sends AppendEntries, heartbeats or snapshots) and one vote a
/// node a term.
final class SimulatedNetwork: MessageSender {
    struct InFlight {
        var arrives: ContinuousClock.Instant
        var order: UInt64
        var message: Message
    }

    private struct State {
        var random: SplitMix
        var inFlight: [InFlight] = []
        var sent: UInt64 = 0
        /// Unordered pairs that cannot talk.
        var cut: Set<[NodeID]> = []
        var lossy = false
        /// Congested: every message takes 10–60 ms, a good part of an election timeout,
        /// so candidates often campaign in the same term.
        var slow = false
        /// Until when a node waits on its disk: what it sends meanwhile leaves then.
        var held: [NodeID: ContinuousClock.Instant] = [:]
        /// Who sent AppendEntries (or heartbeats, or snapshots) in each term: a leader.
        var leaders: [Term: Set<NodeID>] = [:]
        /// Nodes that granted a vote since the simulation last asked.
        var voted: Set<NodeID> = []
        /// The candidates each node granted its vote to, by term.
        var votes: [Term: [NodeID: Set<NodeID>]] = [:]
    }

    private let state: Mutex<State>
    let clock: ManualClock

    init(seed: UInt64, clock: ManualClock) {
        state = Mutex(State(random: SplitMix(state: seed ^ 0x6E65_7477_6F72_6B)))
        self.clock = clock
    }

    func send(_ messages: [Message]) {
        let now = clock.now
        state.withLock { state in
            for message in messages {
                switch message.kind {
                case .append, .heartbeat, .snapshot: state.leaders[message.term, default: []].insert(message.from)
                case .voteResponse(reject: false):
                    state.voted.insert(message.from)
                    state.votes[message.term, default: [:]][message.from, default: []].insert(message.to)
                default: break
                }
            }
            let departs = max(now, state.held[messages.first?.from ?? 0] ?? now)
            for message in messages {
                guard !state.cut.contains([min(message.from, message.to), max(message.from, message.to)]) else { continue }
                if state.lossy && state.random.chance(0.05) { continue }
                let copies = state.lossy && state.random.chance(0.02) ? 2 : 1
                for _ in 0..<copies {
                    // 0.2–3 ms, sometimes 20 ms: later messages may overtake earlier ones. On
                    // a lossy network, 1 in 100 waits 50–300 ms in a sender's queue.
                    let micros = state.lossy && state.random.chance(0.01) ? 50_000 + state.random.below(250_000)
                        : state.slow ? 10_000 + state.random.below(50_000)
                        : state.random.chance(0.03) ? 20_000 : 200 + state.random.below(2_800)
                    state.sent += 1
                    state.inFlight.append(InFlight(arrives: departs + .microseconds(micros), order: state.sent, message: message))
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

    /// `node` waits `duration` more on its disk.
    func hold(_ node: NodeID, for duration: Duration) {
        let now = clock.now
        state.withLock { $0.held[node] = max(now, $0.held[node] ?? now) + duration }
    }

    /// Whether `node` is still waiting on its disk.
    func isHeld(_ node: NodeID) -> Bool {
        let now = clock.now
        return state.withLock { ($0.held[node] ?? now) > now }
    }

    /// Terms in which more than one node acted as leader (Raft's election safety).
    var termsWithTwoLeaders: [Term: Set<NodeID>] { state.withLock { $0.leaders.filter { $0.value.count > 1 } } }

    /// Votes granted twice in one term, to different candidates (a vote is given once).
    var doubleVotes: [String] {
        state.withLock { state in
            state.votes.sorted { $0.key < $1.key }.flatMap { term, voters in
                voters.sorted { $0.key < $1.key }.filter { $0.value.count > 1 }.map { "node \($0.key) voted for \($0.value.sorted()) in term \(term)" }
            }
        }
    }

    /// The nodes that granted a vote since the last call.
    func takeVoters() -> Set<NodeID> {
        state.withLock { state in
            defer { state.voted = [] }
            return state.voted
        }
    }

    func heal() { state.withLock { $0.cut = [] } }
    func setLossy(_ lossy: Bool) { state.withLock { $0.lossy = lossy } }
    func setSlow(_ slow: Bool) { state.withLock { $0.slow = slow } }
    /// Messages to a node that crashed die with its connections, but for those still
    /// waiting in a sender's queue (due more than 20 ms from now): they reach it once it
    /// is back, as a peer link's queue would deliver them over its new connection.
    func drop(to node: NodeID) {
        let now = clock.now
        state.withLock { state in
            state.inFlight.removeAll { $0.message.to == node && $0.arrives <= now + .milliseconds(20) }
            state.held[node] = nil
        }
    }
}
