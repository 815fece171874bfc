import Foundation
import Replica
import Synchronization

/// Whether a node can serve its clients now, and if not, why: what `/readyz`, the gRPC health
/// service and `chorus status` report. Alive is not ready: a node that knows no leader, or
/// applies far behind what is committed, or whose disk is nearly full, answers few requests
/// well, and a load balancer should send them elsewhere.
public struct Readiness: Sendable, Equatable {
    public var problems: [String]
    public var ready: Bool { problems.isEmpty }

    /// Committed entries a node may have left to apply and still be ready.
    static let maxApplyLag: UInt64 = 1_000
    /// Free space its data directory's file system must keep.
    static let minFreeBytes: UInt64 = 64 << 20

    static func evaluate(_ status: ReplicaStatus?, freeBytes: UInt64?) -> Readiness {
        var problems: [String] = []
        if let status {
            if status.leader == 0 {
                problems.append("no leader known: an election is under way, or this node is cut off from a majority")
            }
            if status.commitIndex > status.appliedIndex && status.commitIndex - status.appliedIndex > maxApplyLag {
                problems.append("applying \(status.commitIndex - status.appliedIndex) entries behind the commit index")
            }
        } else {
            problems.append("the Raft loop does not answer within a second")
        }
        if let freeBytes, freeBytes < minFreeBytes {
            problems.append("the data directory's file system has only \(freeBytes >> 20) MiB free")
        }
        return Readiness(problems: problems)
    }
}

/// Asks the replica and the file system, with a deadline, so a stuck loop reads as not ready
/// rather than a probe that never answers.
final class ReadinessProbe: Sendable {
    let replica: ChatReplica
    let dataDirectory: String

    init(replica: ChatReplica, dataDirectory: String) {
        self.replica = replica
        self.dataDirectory = dataDirectory
    }

    private let cache = Mutex(ReadinessCache())

    /// The node's readiness, shared by callers close in time: found at most
    /// `ReadinessCache.maxAge` ago, or the last found while a probe is under way (see there).
    func check() async -> Readiness {
        if case let .answer(readiness) = cache.withLock({ $0.ask(now: .now) }) { return readiness }
        let readiness = Readiness.evaluate(await status(within: .seconds(1)), freeBytes: Self.freeBytes(dataDirectory))
        cache.withLock { $0.found(readiness, at: .now) }
        return readiness
    }

    /// The replica's status, or nil when it does not come in time. The late answer, if any,
    /// is dropped.
    func status(within limit: Duration) async -> ReplicaStatus? {
        let replica = self.replica
        let answer = Answer()
        Task { answer.finish(try? await replica.status()) }
        Task {
            try? await Task.sleep(for: limit)
            answer.finish(nil)
        }
        return await answer.wait()
    }

    /// The first of two racing answers; the other is dropped.
    final class Answer: Sendable {
        private let state = Mutex<(value: ReplicaStatus??, waiter: CheckedContinuation<ReplicaStatus?, Never>?)>((nil, nil))

        func finish(_ status: ReplicaStatus?) {
            let waiter: CheckedContinuation<ReplicaStatus?, Never>? = state.withLock { state in
                guard state.value == nil else { return nil }
                state.value = .some(status)
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: status)
        }

        func wait() async -> ReplicaStatus? {
            await withCheckedContinuation { continuation in
                let ready: ReplicaStatus?? = state.withLock { state in
                    if let value = state.value { return .some(value) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    static func freeBytes(_ path: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}
