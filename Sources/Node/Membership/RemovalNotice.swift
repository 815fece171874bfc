import Logging
import Raft
import ServiceLifecycle
import Synchronization

/// How a node learns that the cluster removed it. The leader stops sending to a member as
/// soon as it appends the entry that removes it, so the removed node never sees that entry:
/// it only stops hearing from the cluster, times out, and asks for votes. The members refuse
/// those with a reason (`PeerService`); when a majority of the voters this node knows say it
/// is a former member, it stops, rather than campaigning against a cluster that will never
/// answer.
final class RemovalNotice: Sendable {
    /// The metadata key of a peer refusal, and its values.
    static let key = "chorus-refusal"
    static let removed = "removed"
    static let notMember = "not-member"

    private struct State {
        var sayRemoved: Set<NodeID> = []
        var waiter: CheckedContinuation<[NodeID]?, Never>?
        var cancelled = false
        var decided: [NodeID]?
    }

    private let state = Mutex(State())
    let id: NodeID
    let directory: MemberDirectory

    init(id: NodeID, directory: MemberDirectory) {
        self.id = id
        self.directory = directory
    }

    /// `peer` refused this node's stream; `reason` is the refusal's metadata value.
    func refused(by peer: NodeID, reason: String?) {
        let voters = directory.configuration.voters
        let waiter: (CheckedContinuation<[NodeID]?, Never>, [NodeID])? = state.withLock { state in
            guard state.decided == nil else { return nil }
            if reason == Self.removed { state.sayRemoved.insert(peer) } else { state.sayRemoved.remove(peer) }
            let agreeing = state.sayRemoved.intersection(voters)
            guard !voters.isEmpty, agreeing.count >= voters.count / 2 + 1 else { return nil }
            let decided = agreeing.sorted()
            state.decided = decided
            defer { state.waiter = nil }
            return state.waiter.map { ($0, decided) }
        }
        if let (continuation, peers) = waiter { continuation.resume(returning: peers) }
    }

    /// A member accepted this node's stream again: whatever it said before no longer stands.
    func accepted(by peer: NodeID) {
        state.withLock { state in _ = state.sayRemoved.remove(peer) }
    }

    /// Waits until a majority has said this node was removed; returns who said so, or nil
    /// when the waiting task is cancelled.
    func wait() async -> [NodeID]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[NodeID]?, Never>) in
                let now: [NodeID]?? = state.withLock { state in
                    if let decided = state.decided { return .some(decided) }
                    if state.cancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.cancelled = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}

/// Ends the node (gracefully, exit status 0) once it learns it was removed.
struct RemovalService: Service {
    let notice: RemovalNotice
    let logger: Logger

    func run() async throws {
        // A shutdown for another reason cancels the wait.
        let said = await cancelWhenGracefulShutdown { await notice.wait() }
        guard let said else { return }
        logger.critical("node \(notice.id) was removed from the cluster: nodes \(said.map(String.init).joined(separator: ", ")) refuse it as a former member. Stopping. Its data directory can be deleted; to bring the machine back, add it under a new id (chorus-tools member add) with an empty data directory and --join")
    }
}
