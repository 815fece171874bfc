import API
import ClusterPKI
import GRPCCore

/// Operator calls on this node.
struct AdminService: Chorus_V1_Admin.SimpleServiceProtocol {
    let replica: ChatReplica
    let configuration: NodeConfiguration
    /// Who is and was a member: a removed id is never added again.
    let directory: MemberDirectory
    let incarnations: Incarnations
    /// One backup at a time (`backup`).
    let backups = BackupGate()

    func takeSnapshot(request: Chorus_V1_TakeSnapshotRequest, context: ServerContext) async throws -> Chorus_V1_TakeSnapshotResponse {
        try requireOperator(context)
        do {
            let report = try await replica.takeSnapshot()
            return .with {
                $0.index = report.info.index
                $0.term = report.info.term
                $0.sizeBytes = report.info.size
                $0.logFirstIndex = report.firstIndex
                $0.durationMs = UInt64(report.duration.components.seconds * 1000 + report.duration.components.attoseconds / 1_000_000_000_000_000)
            }
        } catch {
            throw configuration.rpcError(error)
        }
    }

    /// With TLS, only an operator certificate of this cluster may call the Admin API.
    func requireOperator(_ context: ServerContext) throws {
        guard configuration.tls != nil else { return }
        guard case let .operator(cluster, _)? = context.peerIdentity, cluster == configuration.clusterID else {
            throw RPCError(code: .permissionDenied, message: "the Admin API needs an operator certificate of cluster '\(configuration.clusterID)' (see `chorus-tools certs operator`)")
        }
    }
}
