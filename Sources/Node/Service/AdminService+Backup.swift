import API
import Foundation
import GRPCCore
import LMDB
import Projections
import Replica
import Synchronization

extension AdminService {
    /// A consistent copy of the projections once this node has applied everything the cluster
    /// had committed when the call arrived: a linearizable read first (on a follower too, the
    /// default for `chorus-tools backup`, so the leader only confirms an index), then one LMDB
    /// read transaction copies the tables while writes go on, then the bytes are streamed.
    func backup(request: Chorus_V1_BackupRequest, response: RPCWriter<Chorus_V1_BackupChunk>, context: ServerContext) async throws {
        try requireOperator(context)
        guard backups.begin() else {
            throw RPCError(code: .resourceExhausted, message: "a backup is already being taken on node \(configuration.id); wait for it, or take one from another node")
        }
        defer { backups.end() }
        do {
            try await replica.linearizableRead()
        } catch {
            throw configuration.rpcError(error)
        }
        // Megabytes of copying, hashing and reading would stall the peer event loop's streams.
        try await withTaskExecutorPreference(globalConcurrentExecutor) {
            let scratch = configuration.dataDirectory + "/backup-\(UUID().uuidString)"
            try FileSystem.makePrivateDirectory(scratch)
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try replica.machine.current.state.environment.copy(to: scratch, compact: true)
            let (position, clusterVersion): (AppliedPosition, UInt32)
            do {
                let copy = try ChatState(directory: scratch, readOnly: true)
                (position, clusterVersion) = (try copy.position(), try copy.clusterVersion())
            }
            try? FileManager.default.removeItem(atPath: scratch + "/lock.mdb")
            guard position.index > 0, position.term > 0 else {
                throw RPCError(code: .failedPrecondition, message: "node \(configuration.id)'s projections do not record the term of their last entry (they predate it); take a snapshot first (chorus-tools snapshot), then back up")
            }
            let data = scratch + "/data.mdb"
            let size = FileSystem.size(data) ?? 0
            let sha256 = try SnapshotInfo.checksum(of: data)
            try await response.write(.with {
                $0.header = .with {
                    $0.clusterID = configuration.clusterID
                    $0.nodeID = configuration.id
                    $0.index = position.index
                    $0.term = position.term
                    $0.configuration = Data(position.configuration)
                    $0.clusterVersion = clusterVersion
                    $0.projectionsFormat = FormatVersion.projections
                    $0.release = BuildVersions.release
                    $0.size = size
                    $0.sha256 = Data(sha256)
                }
            })
            guard let file = FileHandle(forReadingAtPath: data) else { throw RPCError(code: .internalError, message: "cannot read the copy \(data)") }
            defer { try? file.close() }
            while let chunk = try file.read(upToCount: Self.backupChunkBytes), !chunk.isEmpty {
                try await response.write(.with { $0.data = chunk })
            }
        }
    }

    /// Bytes per chunk: well under the peer listener's message limit.
    static let backupChunkBytes = 256 << 10
}

/// At most one backup at a time on a node: each holds a full copy of the projections on disk.
final class BackupGate: Sendable {
    private let running = Mutex(false)

    func begin() -> Bool {
        running.withLock { running in
            guard !running else { return false }
            running = true
            return true
        }
    }

    func end() {
        running.withLock { $0 = false }
    }
}
