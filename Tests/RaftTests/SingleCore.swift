import Raft

/// One core driven by hand for interaction tests: node 1 leading nodes 1, 2 and 3 in term 1,
/// its no-op (index 1) committed by node 2; every `Ready` carried out as a node would.
enum SingleCore {
    static func leader(seed: UInt64) -> (RaftCore, MemoryStorage) {
        let storage = MemoryStorage(configuration: ClusterConfiguration(voters: [1, 2, 3]))
        var options = RaftOptions(id: 1, seed: seed)
        options.preVote = false
        options.heartbeatTicks = 2
        var core = RaftCore(storage: storage, options: options)
        core.campaign()
        settle(&core, storage)
        core.step(Message(from: 2, to: 1, term: 1, kind: .voteResponse(reject: false)))
        settle(&core, storage)
        core.step(Message(from: 2, to: 1, term: 1, kind: .appendResponse(index: 1, reject: false, hintIndex: 0, hintTerm: 0)))
        settle(&core, storage)
        return (core, storage)
    }

    /// Entries to storage, then `advance`, until nothing is ready; what was sent and the read
    /// states handed over.
    @discardableResult
    static func settle(_ core: inout RaftCore, _ storage: MemoryStorage) -> (sent: [Message], reads: [ReadState]) {
        var sent: [Message] = []
        var reads: [ReadState] = []
        while core.hasReady {
            let ready = core.ready()
            storage.append(ready.entries)
            if let hardState = ready.hardState { storage.setHardState(hardState) }
            sent += ready.leaderMessages + ready.messages
            reads += ready.readStates
            core.advance(ready)
        }
        return (sent, reads)
    }
}
