import API
import GRPCCore

/// Operator calls on this node.
struct AdminService: Chorus_V1_Admin.SimpleServiceProtocol {
    let replica: Replica
    let configuration: NodeConfiguration

    func takeSnapshot(request: Chorus_V1_TakeSnapshotRequest, context: ServerContext) async throws -> Chorus_V1_TakeSnapshotResponse {
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
}
