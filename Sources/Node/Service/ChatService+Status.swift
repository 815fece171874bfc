import API
import GRPCCore
import Projections
import Raft
import Replica

extension ChatService {
    /// What this node and its peers apply, and the cluster version it applied.
    var versions: PeerVersions { replica.machine.versions }

    /// This node's view of the cluster; answered by any node, without a barrier.
    func clusterStatus(request: Chorus_V1_ClusterStatusRequest, context: ServerContext) async throws -> Chorus_V1_ClusterStatusResponse {
        let status: ReplicaStatus
        do {
            status = try await replica.status()
        } catch {
            throw configuration.rpcError(error)
        }
        return .with {
            $0.nodeID = status.id
            $0.clusterID = configuration.clusterID
            $0.role = Self.name(status.role)
            $0.term = status.term
            $0.leaderID = status.leader
            $0.leaderAddress = configuration.clientAddress(of: status.leader)?.description ?? ""
            $0.commitIndex = status.commitIndex
            $0.appliedIndex = status.appliedIndex
            $0.lastIndex = status.lastIndex
            $0.refusedPeerMessages = status.refusedPeerMessages
            let readiness = Readiness.evaluate(status, freeBytes: ReadinessProbe.freeBytes(configuration.dataDirectory))
            $0.ready = readiness.ready
            $0.notReady = readiness.problems
            $0.members = status.members.map { member in
                .with {
                    $0.id = member.id
                    $0.address = configuration.clientAddress(of: member.id)?.description ?? ""
                    $0.voter = member.voter
                    $0.matchIndex = member.matchIndex
                    $0.active = member.id == status.id || member.matchIndex > 0
                    if member.id == status.id {
                        $0.maxClusterVersion = versions.build.maxClusterVersion
                        $0.release = BuildVersions.release
                    } else if let advertised = versions.advertised(by: member.id) {
                        $0.maxClusterVersion = advertised.build.maxClusterVersion
                        $0.release = advertised.release
                    }
                }
            }
            $0.clusterVersion = versions.clusterVersion
            $0.buildMaxClusterVersion = versions.build.maxClusterVersion
            $0.release = BuildVersions.release
        }
    }

    static func name(_ role: Role) -> String {
        switch role {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}
