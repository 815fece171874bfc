import API
import GRPCCore
import Raft

/// Incoming Raft traffic: every batch on every peer stream goes to the replica.
struct PeerService: Chorus_V1_Peer.SimpleServiceProtocol {
    let replica: Replica
    let clusterID: String
    let snapshots: SnapshotReceiver

    func stream(request: RPCAsyncSequence<Chorus_V1_PeerBatch, any Error>, context: ServerContext) async throws -> Chorus_V1_PeerStreamSummary {
        var received: UInt64 = 0
        for try await batch in request {
            guard batch.clusterID == clusterID else {
                throw RPCError(code: .permissionDenied, message: "this node belongs to cluster '\(clusterID)', not '\(batch.clusterID)'")
            }
            var messages: [Message] = []
            messages.reserveCapacity(batch.messages.count)
            for encoded in batch.messages {
                // Snapshots arrive only through InstallSnapshot, after their file is stored.
                guard encoded.to == replica.id, let message = MessageCoding.decode(encoded) else { continue }
                if case .snapshot = message.kind { continue }
                messages.append(message)
            }
            replica.receive(messages)
            received += UInt64(messages.count)
        }
        return .with { $0.received = received }
    }

    func installSnapshot(request: RPCAsyncSequence<Chorus_V1_SnapshotChunk, any Error>, response: RPCWriter<Chorus_V1_SnapshotProgress>, context: ServerContext) async throws {
        // Writing, hashing and fsyncing megabytes would stall the event loop's other streams.
        try await withTaskExecutorPreference(globalConcurrentExecutor) {
            try await snapshots.receive(request: request, response: response, clusterID: clusterID, replica: replica)
        }
    }
}
