import API
import CrashPoints
import Foundation
import GRPCCore
import LMDB
import Logging
import Projections
import Raft
import Replica
import Synchronization

/// Receives a snapshot from the leader into `snapshots/incoming/`, stores it once complete
/// and verified, and only then hands its Raft message to the replica, so Raft never
/// restores a snapshot the node does not durably hold.
final class SnapshotReceiver: Sendable {
    let store: SnapshotStore
    let logger: Logger
    /// The largest snapshot file accepted: a header may claim any size, and the file is
    /// written to disk before anything else checks it.
    let maxBytes: UInt64
    /// Checksums of files being received: one stream per file.
    private let active = Mutex<Set<[UInt8]>>([])
    /// Test hook: break the first transfer off once this many bytes are held, to show it
    /// resumes (`CHORUS_TEST_SNAPSHOT_DROP_AT`). Debug builds only: a release build never
    /// reads the variable.
    #if DEBUG
    private let dropAt: UInt64? = ProcessInfo.processInfo.environment["CHORUS_TEST_SNAPSHOT_DROP_AT"].flatMap { UInt64($0) }
    #else
    private let dropAt: UInt64? = nil
    #endif
    private let dropped = Atomic<Bool>(false)

    init(store: SnapshotStore, maxBytes: UInt64, logger: Logger) {
        self.store = store
        self.maxBytes = maxBytes
        self.logger = logger
    }

    func receive(
        request: RPCAsyncSequence<Chorus_V1_SnapshotChunk, any Error>,
        response: RPCWriter<Chorus_V1_SnapshotProgress>,
        clusterName: ClusterName,
        directory: MemberDirectory,
        sender: NodeID?,
        replica: ChatReplica
    ) async throws {
        var chunks = request.makeAsyncIterator()
        guard case let .header(header)? = try await chunks.next()?.part else {
            throw RPCError(code: .invalidArgument, message: "an InstallSnapshot stream starts with its header")
        }
        if let refusal = clusterName.refusal(of: header.clusterID) {
            throw RPCError(code: .permissionDenied, message: refusal)
        }
        let message: Message
        do throws(Refusal) {
            message = try MessageCoding.decode(header.message)
            guard message.to == replica.id else { throw .misaddressed(to: message.to) }
            guard directory.accepts(from: message.from), message.from != replica.id, sender == nil || sender == message.from else { throw .unknownSender }
        } catch {
            replica.refusals.record(from: header.message.from, error)
            throw RPCError(code: .invalidArgument, message: "the InstallSnapshot header was refused: \(error)")
        }
        guard case let .snapshot(snapshot) = message.kind, header.sha256.count == 32 else {
            throw RPCError(code: .invalidArgument, message: "the InstallSnapshot header does not carry a snapshot for node \(replica.id)")
        }
        guard header.size > 0, header.size <= maxBytes else {
            replica.refusals.record(from: message.from, .tooLarge(field: "snapshot bytes", size: Int(clamping: header.size), limit: Int(clamping: maxBytes)))
            throw RPCError(code: .resourceExhausted, message: "a snapshot of \(header.size) bytes is refused; this node accepts 1 to \(maxBytes) (--max-snapshot-bytes)")
        }
        if let refusal = RaftCore.validate(snapshot.metadata.configuration, MessageLimits()) {
            replica.refusals.record(from: message.from, refusal)
            throw RPCError(code: .invalidArgument, message: "the InstallSnapshot header was refused: \(refusal)")
        }
        let info = SnapshotInfo(index: snapshot.metadata.index, term: snapshot.metadata.term,
                                configuration: snapshot.metadata.configuration.encoded(),
                                size: header.size, sha256: Array(header.sha256))
        guard active.withLock({ $0.insert(info.sha256).inserted }) else {
            throw RPCError(code: .unavailable, message: "already receiving the snapshot at index \(info.index)")
        }
        defer { active.withLock { _ = $0.remove(info.sha256) } }

        if store.find(index: info.index, term: info.term) == nil {
            try await receiveFile(info, chunks: &chunks, response: response)
        }
        replica.receive([message])
        try await response.write(.with { $0.offset = info.size; $0.stored = true })
    }

    private func receiveFile(
        _ info: SnapshotInfo,
        chunks: inout RPCAsyncSequence<Chorus_V1_SnapshotChunk, any Error>.AsyncIterator,
        response: RPCWriter<Chorus_V1_SnapshotProgress>
    ) async throws {
        store.removePartials(except: info.sha256)
        let partial = store.partialPath(sha256: info.sha256)
        let fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, FileSystem.privateFileMode)
        guard fd >= 0 else {
            throw RPCError(code: .internalError, message: "cannot open \(partial): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var offset = UInt64(max(0, lseek(fd, 0, SEEK_END)))
        if offset > info.size {
            _ = ftruncate(fd, 0)
            offset = 0
        }
        if offset > 0 {
            logger.info("resuming the snapshot at index \(info.index) at byte \(offset) of \(info.size)")
        }
        try await response.write(.with { $0.offset = offset })
        while offset < info.size {
            guard let chunk = try await chunks.next() else {
                throw RPCError(code: .aborted, message: "the snapshot stream ended at byte \(offset) of \(info.size)")
            }
            guard case let .data(bytes)? = chunk.part, !bytes.isEmpty, UInt64(bytes.count) <= info.size - offset else {
                throw RPCError(code: .invalidArgument, message: "expected at most \(info.size - offset) more bytes of snapshot data")
            }
            let written = bytes.withUnsafeBytes { buffer in pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
            guard written == bytes.count else {
                throw RPCError(code: .internalError, message: "cannot write \(partial): \(String(cString: strerror(errno)))")
            }
            offset += UInt64(written)
            if let dropAt, offset >= dropAt, !dropped.exchange(true, ordering: .relaxed) {
                logger.warning("test hook: breaking off the snapshot transfer at byte \(offset)")
                throw RPCError(code: .unavailable, message: "snapshot transfer broken off by a test")
            }
            try await response.write(.with { $0.offset = offset })
        }
        CrashPoint.reach("snapshot-received")
        do {
            _ = try store.adopt(partial: partial, info: info)
        } catch let error as SnapshotError {
            throw RPCError(code: .dataLoss, message: error.description)
        }
        CrashPoint.reach("snapshot-adopted")
        logger.info("received the snapshot at index \(info.index) (\(info.size) bytes)")
    }
}
