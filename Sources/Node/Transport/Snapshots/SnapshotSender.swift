import API
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Mailbox
import Projections
import Raft
import Replica
import Synchronization

/// Streams snapshots to one peer. Raft asks for a snapshot as a message; its metadata names
/// the file in `snapshots/`, which goes out in chunks on its own stream so that heartbeats
/// and votes are never stuck behind megabytes of data.
///
/// One transfer at a time: Raft repeats a snapshot message while the follower has not
/// caught up, and a repeat of the snapshot being sent is dropped. A broken transfer is
/// retried, and resumes at the byte the follower reports it holds.
final class SnapshotSender: Sendable {
    let peer: NodeID
    let clusterName: ClusterName
    let store: SnapshotStore
    let logger: Logger
    /// Bytes per chunk, and how many bytes may be sent and not yet acknowledged: the
    /// follower's acknowledgements pace the leader (flow control beyond HTTP/2's own).
    static let chunkSize = 256 << 10
    static let window: UInt64 = 2 << 20

    /// The snapshot Raft asked for last; a newer request replaces an older one.
    private let offers = Mailbox<Message>(capacity: 1, overflow: .dropOldest)
    /// The index of the snapshot on its way, if one is.
    private let sending = Mutex<Index?>(nil)

    let metrics: NodeMetrics

    init(peer: NodeID, clusterName: ClusterName, store: SnapshotStore, metrics: NodeMetrics, logger: Logger) {
        self.peer = peer
        self.metrics = metrics
        self.clusterName = clusterName
        self.store = store
        self.logger = logger
    }

    /// Queues a Raft snapshot message, unless that snapshot is already on its way.
    func offer(_ message: Message) {
        guard case let .snapshot(snapshot) = message.kind, sending.withLock({ $0 }) != snapshot.metadata.index else { return }
        offers.push(message)
    }

    /// A newer snapshot waits: the one being sent is not worth finishing.
    private var superseded: Bool { offers.waiting > 0 }

    /// Sends queued snapshots until cancelled or stopped.
    func run(stub: Chorus_V1_Peer.Client<HTTP2ClientTransport.Posix>) async {
        for await batch in offers.batches {
            guard let message = batch.last, case let .snapshot(snapshot) = message.kind else { continue }
            sending.withLock { $0 = snapshot.metadata.index }
            await transfer(message, stub: stub)
            sending.withLock { $0 = nil }
        }
    }

    func stop() {
        offers.finish()
    }

    private func transfer(_ message: Message, stub: Chorus_V1_Peer.Client<HTTP2ClientTransport.Posix>) async {
        guard case let .snapshot(snapshot) = message.kind else { return }
        var delay = Duration.milliseconds(100)
        for attempt in 1...30 {
            guard !Task.isCancelled, !superseded else { return }
            guard let info = store.find(index: snapshot.metadata.index, term: snapshot.metadata.term) else {
                // Replaced by a newer one; Raft will ask for that.
                logger.info("snapshot at \(snapshot.metadata.index) is no longer held; not sending it to peer \(peer)")
                return
            }
            let clock = ContinuousClock()
            let started = clock.now
            do {
                if try await send(info, message: message, stub: stub) {
                    metrics.replica.recordSnapshot(.sent, bytes: info.size, duration: clock.now - started)
                    logger.info("sent the snapshot at index \(info.index) (\(info.size) bytes) to peer \(peer) in \(clock.now - started)")
                    return
                }
            } catch {
                logger.warning("snapshot transfer to peer \(peer) (attempt \(attempt)) broke off: \(error)")
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    /// One attempt: header, then chunks from the offset the follower reports. True once the
    /// follower has stored the whole file and handed it to Raft.
    private func send(_ info: SnapshotInfo, message: Message, stub: Chorus_V1_Peer.Client<HTTP2ClientTransport.Posix>) async throws -> Bool {
        let path = store.dataPath(info)
        let header = Chorus_V1_SnapshotHeader.with {
            $0.clusterID = clusterName.wire
            $0.message = MessageCoding.encode(message)
            $0.size = info.size
            $0.sha256 = Data(info.sha256)
        }
        let (acknowledgements, acknowledge) = AsyncStream<Chorus_V1_SnapshotProgress>.makeStream()
        let peer = self.peer
        let logger = self.logger
        return try await stub.installSnapshot(requestProducer: { writer in
            try await writer.write(.with { $0.header = header })
            var progress = acknowledgements.makeAsyncIterator()
            guard let first = await progress.next(), !first.stored else { return }
            guard let file = FileHandle(forReadingAtPath: path) else {
                throw RPCError(code: .unavailable, message: "the snapshot file \(path) is gone")
            }
            defer { try? file.close() }
            if first.offset > 0 {
                logger.info("resuming the snapshot transfer to peer \(peer) at byte \(first.offset) of \(info.size)")
            }
            try file.seek(toOffset: first.offset)
            var sent = first.offset
            var confirmed = first.offset
            while sent < info.size {
                while sent - confirmed >= Self.window {
                    guard let next = await progress.next() else { return }
                    confirmed = next.offset
                }
                guard let chunk = try file.read(upToCount: Self.chunkSize), !chunk.isEmpty else {
                    throw RPCError(code: .internalError, message: "the snapshot file \(path) is shorter than \(info.size) bytes")
                }
                try await writer.write(.with { $0.data = chunk })
                sent += UInt64(chunk.count)
            }
            // Keep the request open until the follower says it stored the file.
            while let next = await progress.next(), !next.stored {}
        }, onResponse: { response in
            defer { acknowledge.finish() }
            var stored = false
            for try await progress in response.messages {
                acknowledge.yield(progress)
                if progress.stored { stored = true }
            }
            return stored
        })
    }
}
