import API
import GRPCCore
import Projections
import Raft
import Replica

extension NodeConfiguration {
    /// Metadata pointing a client at `leader`.
    func leaderHint(_ leader: NodeID?) -> Metadata {
        guard let leader, let address = clientAddress(of: leader) else { return [:] }
        return [MetadataKeys.leader: "\(leader)=\(address)"]
    }

    /// How long a client should wait when the node is over its proposal limits: about what
    /// a batch of them takes to commit.
    static let overloadRetry = Duration.milliseconds(50)

    func rpcError(_ error: ReplicaError) -> RPCError {
        switch error {
        case let .notLeader(leader):
            let known = leader.flatMap { leader in clientAddress(of: leader).map { "; the leader is node \(leader) at \($0)" } } ?? "; no leader is known yet, retry shortly"
            var metadata = leaderHint(leader)
            metadata.addString("1", forKey: MetadataKeys.notProposed)
            return RPCError(code: .unavailable, message: "node \(id) is not the leader\(known)", metadata: metadata)
        case .timedOut:
            return RPCError(code: .unavailable, message: "the request did not commit in time (no majority reachable?); its outcome is unknown: retry with the same request id")
        case let .leadershipLost(leader):
            return RPCError(code: .unavailable, message: "leadership changed while the request waited; retry with the same request id", metadata: leaderHint(leader))
        case .stopped:
            return RPCError(code: .unavailable, message: "node \(id) is shutting down")
        case let .overloaded(proposals, bytes):
            return RPCError(code: .resourceExhausted, message: "node \(id) has \(proposals) proposals (\(bytes) bytes) waiting to commit, as many as it allows; retry shortly",
                            metadata: ChatService.retryAfter(Self.overloadRetry))
        case let .readsOverloaded(reads):
            return RPCError(code: .resourceExhausted, message: "node \(id) has \(reads) reads waiting to be served, as many as it allows; retry shortly",
                            metadata: ChatService.retryAfter(Self.overloadRetry))
        case let .snapshotFailed(reason):
            return RPCError(code: .internalError, message: "node \(id) could not take a snapshot: \(reason)")
        case let .membershipRefused(reason):
            return RPCError(code: .failedPrecondition, message: reason)
        }
    }
}

extension Rejection {
    var rpcError: RPCError {
        let code: RPCError.Code = switch self.code {
        case .invalidArgument: .invalidArgument
        case .alreadyExists: .alreadyExists
        case .notFound: .notFound
        case .unauthenticated: .unauthenticated
        case .permissionDenied: .permissionDenied
        case .failedPrecondition: .failedPrecondition
        }
        return RPCError(code: code, message: message)
    }
}
