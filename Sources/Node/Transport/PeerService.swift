import API
import GRPCCore
import Raft

/// Incoming Raft traffic: every batch on every peer stream goes to the replica.
struct PeerService: Chorus_V1_Peer.SimpleServiceProtocol {
    let replica: Replica
    let clusterID: String

    func stream(request: RPCAsyncSequence<Chorus_V1_PeerBatch, any Error>, context: ServerContext) async throws -> Chorus_V1_PeerStreamSummary {
        var received: UInt64 = 0
        for try await batch in request {
            guard batch.clusterID == clusterID else {
                throw RPCError(code: .permissionDenied, message: "this node belongs to cluster '\(clusterID)', not '\(batch.clusterID)'")
            }
            for encoded in batch.messages {
                guard encoded.to == replica.id, let message = MessageCoding.decode(encoded) else { continue }
                replica.receive(message)
                received += 1
            }
        }
        return .with { $0.received = received }
    }
}
