import API
import GRPCCore
import Logging
import Raft

/// Incoming Raft traffic: every batch on every peer stream goes to the replica, less what
/// cannot be a peer's message at all (unreadable, not for this node, from a stranger), which
/// is refused here; the Raft core checks the rest against its state.
struct PeerService: Chorus_V1_Peer.SimpleServiceProtocol {
    let replica: ChatReplica
    /// The cluster's id, which certificates name.
    let clusterID: String
    /// What peers' messages must name: the id and the cluster's incarnation, if any.
    let clusterName: ClusterName
    let snapshots: SnapshotReceiver
    /// The cluster's members, as its configuration says.
    let directory: MemberDirectory
    /// Each peer's data-directory incarnation, to refuse one that lost its data.
    let incarnations: Incarnations
    /// What each peer's build applies; a peer too old for the cluster version is refused.
    let versions: PeerVersions
    /// Whether callers prove who they are with a node certificate (mutual TLS): then every
    /// message must come from the node the certificate names.
    let authenticated: Bool
    let logger: Logger
    /// The streams open to this node, by sender: one service serves them all.
    let inbound = InboundStreams()

    func stream(request: RPCAsyncSequence<Chorus_V1_PeerBatch, any Error>, context: ServerContext) async throws -> Chorus_V1_PeerStreamSummary {
        let sender = authenticated ? try context.authenticatedNode(of: clusterID) : nil
        var received: UInt64 = 0
        // Who is on the other end, once known. However the stream ends (the peer's process
        // died, its link restarted, it was refused here), the replica hears of it if it was
        // the peer's last stream: if the peer was leading, a quick election beats waiting out
        // the timeout; if a newer stream from it is open, the peer is alive.
        var peer = sender
        let stream = versions.newStream()
        var advertiser: NodeID?
        if let sender { inbound.opened(sender) }
        defer {
            if let advertiser { versions.forget(advertiser, stream: stream) }
            if let peer, inbound.closed(peer) { replica.connectionLost(to: peer) }
        }
        for try await batch in request {
            if let refusal = clusterName.refusal(of: batch.clusterID) {
                throw RPCError(code: .permissionDenied, message: refusal)
            }
            if let from = sender ?? batch.messages.first?.from {
                // A node that is no member (any more) hears why, and its stream ends.
                if let refusal = directory.refusal(of: from, heardBefore: incarnations.knows(from)) {
                    replica.refusals.record(from: from, .unknownSender)
                    throw RPCError(code: .failedPrecondition, message: "node \(replica.id) refuses this stream: \(refusal.message)",
                                   metadata: [RemovalNotice.key: .string(refusal.reason)])
                }
            }
            if let from = sender ?? batch.messages.first?.from, let refusal = incarnations.check(from, batch.senderIncarnation) {
                replica.refusals.record(from: from, .unknownSender)
                logger.warning("refused node \(from): \(refusal)", metadata: ["peer": "\(from)"])
                throw RPCError(code: .failedPrecondition, message: "node \(replica.id) refuses this stream: \(refusal)")
            }
            if peer == nil, let from = batch.messages.first?.from, directory.accepts(from: from) {
                peer = from
                inbound.opened(from)
            }
            var messages: [Message] = []
            messages.reserveCapacity(batch.messages.count)
            for encoded in batch.messages {
                if let sender, encoded.from != sender {
                    // A member speaking for another is no mistake to skip over: end the stream.
                    replica.refusals.record(from: sender, .unknownSender)
                    logger.warning("node \(sender)'s certificate sent a message as node \(encoded.from); closing its stream", metadata: ["peer": "\(sender)"])
                    throw RPCError(code: .permissionDenied, message: "node \(sender)'s certificate cannot send as node \(encoded.from)")
                }
                do throws(Refusal) {
                    messages.append(try accept(encoded))
                } catch {
                    replica.refusals.record(from: encoded.from, error)
                }
            }
            // Who speaks is settled: now whether its build may take part (`PeerVersions`).
            if let from = sender ?? batch.messages.first?.from { advertiser = from }
            if let from = sender ?? batch.messages.first?.from,
               let refusal = versions.heard(from: from, on: stream, batch.hasSenderBuild ? batch.senderBuild : nil) {
                replica.refusals.record(from: from, .unknownSender)
                if versions.shouldLogRefusal(of: from) { logger.error("refused node \(from): \(refusal)", metadata: ["peer": "\(from)"]) }
                throw RPCError(code: .failedPrecondition, message: "node \(replica.id) refuses this stream: \(refusal)")
            }
            replica.receive(messages)
            received += UInt64(messages.count)
        }
        return .with { $0.received = received }
    }

    /// The message `encoded` carries, if a member may have sent it to this node.
    func accept(_ encoded: Chorus_V1_RaftMessage) throws(Refusal) -> Message {
        guard encoded.to == replica.id else { throw .misaddressed(to: encoded.to) }
        guard encoded.from != replica.id, directory.accepts(from: encoded.from) else { throw .unknownSender }
        let message = try MessageCoding.decode(encoded)
        // Snapshots arrive only through InstallSnapshot, after their file is stored.
        if case .snapshot = message.kind { throw .malformed("a snapshot outside InstallSnapshot") }
        return message
    }

    func installSnapshot(request: RPCAsyncSequence<Chorus_V1_SnapshotChunk, any Error>, response: RPCWriter<Chorus_V1_SnapshotProgress>, context: ServerContext) async throws {
        // Writing, hashing and fsyncing megabytes would stall the event loop's other streams.
        let sender = authenticated ? try context.authenticatedNode(of: clusterID) : nil
        try await withTaskExecutorPreference(globalConcurrentExecutor) {
            try await snapshots.receive(request: request, response: response, clusterName: clusterName, directory: directory, sender: sender, replica: replica)
        }
    }
}
