import Raft
import Testing

/// A leader tells followers of a new commit index with its next append or heartbeat, not with
/// a round of empty appends of its own.
@Suite struct CommitPropagationTests {
    func leader() -> (RaftCore, MemoryStorage) { SingleCore.leader(seed: 11) }

    @discardableResult
    func settle(_ core: inout RaftCore, _ storage: MemoryStorage) -> [Message] {
        SingleCore.settle(&core, storage).sent
    }

    func commits(in messages: [Message], to node: NodeID) -> [Index] {
        messages.filter { $0.to == node }.compactMap { message in
            switch message.kind {
            case let .append(_, _, _, commit): commit
            case let .heartbeat(commit, _): commit
            default: nil
            }
        }
    }

    @Test func aCommitSendsNoEmptyAppends() {
        var (core, storage) = leader()
        #expect(core.isLeader)
        let accepted = core.propose([[1], [2]])
        #expect(accepted)
        var sent = settle(&core, storage)
        // Node 3 never answered: it is probed one append at a time and gets nothing new yet.
        #expect(sent.filter { if case .append = $0.kind { $0.to == 2 } else { false } }.count == 1)

        core.step(Message(from: 2, to: 1, term: 1, kind: .appendResponse(index: 3, reject: false, hintIndex: 0, hintTerm: 0)))
        #expect(core.commitIndex == 3)
        sent = settle(&core, storage)
        #expect(sent.isEmpty, "the commit itself sends nothing: \(sent)")
    }

    @Test func followersLearnTheCommitFromTheNextAppendOrHeartbeat() {
        var (core, storage) = leader()
        let accepted = core.propose([[1]])
        #expect(accepted)
        settle(&core, storage)
        core.step(Message(from: 2, to: 1, term: 1, kind: .appendResponse(index: 2, reject: false, hintIndex: 0, hintTerm: 0)))
        #expect(core.commitIndex == 2)
        settle(&core, storage)

        // The next proposal's append carries the commit index.
        let acceptedNext = core.propose([[2]])
        #expect(acceptedNext)
        #expect(commits(in: settle(&core, storage), to: 2) == [2])

        // With nothing to send, the heartbeat carries it, capped at what each follower holds.
        var sent: [Message] = []
        for _ in 0..<2 {
            core.tick()
            sent += settle(&core, storage)
        }
        #expect(commits(in: sent, to: 2) == [2])
        #expect(commits(in: sent, to: 3) == [0], "node 3 acknowledged nothing yet")
    }
}
