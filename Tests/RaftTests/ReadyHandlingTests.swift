import Raft
import Testing

/// `ReadyHandling`, the one copy of the order a node handles a ready in, which the replica loop
/// and the simulation both run: its effects, recorded in the order they happen.
@Suite struct ReadyHandlingTests {
    final class Recorder: ReadyEffects {
        enum Event: Equatable {
            case send([Message.Kind])
            case write(HardState?, entries: [Index], snapshot: Index?)
            case apply([Index])
            case confirm(Int)
            case advance
        }

        var events: [Event] = []
        var failWrites = false
        var core: RaftCore

        init(core: RaftCore) {
            self.core = core
        }

        struct DiskFull: Error {}

        func send(_ messages: [Message]) {
            if !messages.isEmpty { events.append(.send(messages.map(\.kind))) }
        }

        func write(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
            if failWrites { throw DiskFull() }
            events.append(.write(hardState, entries: entries.map(\.index), snapshot: snapshot?.metadata.index))
        }

        func apply(_ entries: [Entry]) throws {
            events.append(.apply(entries.map(\.index)))
        }

        func confirm(_ readStates: [ReadState]) {
            events.append(.confirm(readStates.count))
        }

        func advance(_ ready: Ready) {
            events.append(.advance)
            core.advance(ready)
        }

        /// Runs the core's ready through `handling`, start and finish at once, as the node does.
        func handle(_ handling: inout ReadyHandling) throws {
            let ready = core.ready()
            handling.start(ready, self)
            try handling.finish(ready, self)
        }
    }

    /// `ReadyTests`' follower of a three-node cluster: entries 1...3 of term 1, committed to 1.
    func follower() -> Recorder {
        Recorder(core: ReadyTests().follower())
    }

    func append(from leader: NodeID = 2, after prevIndex: Index, _ entries: [Entry], commit: Index) -> Message {
        Message(from: leader, to: 1, term: 1, kind: .append(prevIndex: prevIndex, prevTerm: 1, entries: entries, commit: commit))
    }

    @Test func aCommitOnlyHardStateIsHeldAndGoesWithTheNextWrite() throws {
        let node = follower()
        var handling = ReadyHandling()
        node.core.step(Message(from: 2, to: 1, term: 1, kind: .heartbeat(commit: 3, context: nil)))
        try node.handle(&handling)
        #expect(!node.events.contains { if case .write = $0 { true } else { false } }, "no fsync for a commit index alone")
        #expect(handling.held == HardState(term: 1, vote: 2, commit: 3))
        #expect(node.events.first == .send([.heartbeatResponse(context: nil)]))
        #expect(node.events.contains(.apply([2, 3])))

        node.events = []
        node.core.step(append(after: 3, [Entry(index: 4, term: 1)], commit: 3))
        try node.handle(&handling)
        #expect(node.events.first == .write(HardState(term: 1, vote: 2, commit: 3), entries: [4], snapshot: nil))
        #expect(handling.held == nil)
    }

    @Test func theAnswerLeavesOnlyAfterTheWriteAndTheCoreAdvancesLast() throws {
        let node = follower()
        var handling = ReadyHandling()
        node.core.step(append(after: 3, [Entry(index: 4, term: 1), Entry(index: 5, term: 1)], commit: 2))
        try node.handle(&handling)
        #expect(node.events == [
            .write(HardState(term: 1, vote: 2, commit: 2), entries: [4, 5], snapshot: nil),
            .send([.appendResponse(index: 5, reject: false, hintIndex: 0, hintTerm: 0)]),
            .apply([2]),
            .confirm(0),
            .advance,
        ])
    }

    @Test func aVoteLeavesOnlyAfterItIsWritten() throws {
        let node = follower()
        var handling = ReadyHandling()
        node.core.step(Message(from: 3, to: 1, term: 2, kind: .vote(lastIndex: 3, lastTerm: 1, transfer: false)))
        try node.handle(&handling)
        #expect(node.events.prefix(2) == [
            .write(HardState(term: 2, vote: 3, commit: 1), entries: [], snapshot: nil),
            .send([.voteResponse(reject: false)]),
        ])
    }

    @Test func aFailedWriteSendsNothingAppliesNothingAndDoesNotAdvance() throws {
        let node = follower()
        var handling = ReadyHandling()
        node.core.step(Message(from: 2, to: 1, term: 1, kind: .heartbeat(commit: 2, context: nil)))
        try node.handle(&handling)
        #expect(handling.held != nil)
        node.events = []
        node.failWrites = true
        node.core.step(append(after: 3, [Entry(index: 4, term: 1)], commit: 3))
        #expect(throws: Recorder.DiskFull.self) { try node.handle(&handling) }
        #expect(node.events.isEmpty, "an acknowledgement of what is not on disk would count toward a commit")
        #expect(node.core.hasReady, "the core was not told the entries are stable")
        // Let go before the write: when the write was a snapshot's, a stop must not write the
        // older commit index over it. A commit index is learned again from the leader.
        #expect(handling.held == nil)
    }

    @Test func aLeaderSendsItsAppendsBeforeItsOwnWrite() throws {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var options = RaftOptions(id: 1, seed: 3)
        options.preVote = false
        var core = RaftCore(storage: storage, options: options)
        core.campaign()
        let node = Recorder(core: core)
        var handling = ReadyHandling()
        while node.core.hasReady { try node.handle(&handling) }
        node.core.step(Message(from: 2, to: 1, term: 1, kind: .voteResponse(reject: false)))
        node.events = []
        // The new leader's first entry: written to its own log and appended to its followers.
        while node.core.hasReady { try node.handle(&handling) }
        #expect(node.core.isLeader)
        let write = node.events.firstIndex { if case let .write(_, entries, _) = $0 { !entries.isEmpty } else { false } }
        let appends = node.events.firstIndex { event in
            guard case let .send(kinds) = event else { return false }
            return kinds.contains { if case .append = $0 { true } else { false } }
        }
        #expect(write != nil && appends != nil, "\(node.events)")
        if let write, let appends {
            #expect(appends < write, "the followers' copies start while the leader's own disk works")
        }
    }
}
