import API
import Foundation
import GRPCCore

/// What a node says about the copy it streams for a backup.
public struct BackupHeader: Sendable, Equatable {
    public var clusterID: String
    public var nodeID: UInt64
    public var index: UInt64
    public var term: UInt64
    public var configuration: [UInt8]
    public var clusterVersion: UInt32
    public var projectionsFormat: UInt32
    public var release: String
    public var size: UInt64
    public var sha256: [UInt8]
}

extension ClusterAdmin {
    /// Streams a backup of the node at `endpoint` into `file` (created 0600, fsynced);
    /// `progress` hears the bytes received and the total. Returns what the node said of it.
    public func backup(from endpoint: String, into file: String, within limit: Duration,
                       progress: @escaping @Sendable (UInt64, UInt64) -> Void) async throws -> BackupHeader {
        let result = try await call(endpoint, within: limit) { stub, options in
            try await stub.backup(.init(), options: options) { response in
                guard FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600]),
                      let handle = FileHandle(forWritingAtPath: file)
                else {
                    throw ChorusError.invalidInput("cannot write \(file)")
                }
                defer { try? handle.close() }
                var header: BackupHeader?
                var received: UInt64 = 0
                for try await chunk in response.messages {
                    switch chunk.part {
                    case let .header(h)?:
                        header = BackupHeader(clusterID: h.clusterID, nodeID: h.nodeID, index: h.index, term: h.term, configuration: Array(h.configuration),
                                              clusterVersion: h.clusterVersion, projectionsFormat: h.projectionsFormat, release: h.release,
                                              size: h.size, sha256: Array(h.sha256))
                    case let .data(bytes)?:
                        guard let header, received + UInt64(bytes.count) <= header.size else {
                            throw ChorusError.other("the node sent more bytes than its backup header announced")
                        }
                        try handle.write(contentsOf: bytes)
                        received += UInt64(bytes.count)
                        progress(received, header.size)
                    case nil:
                        break
                    }
                }
                try handle.synchronize()
                guard let header else { throw ChorusError.other("the node sent no backup header") }
                return header
            }
        }
        return try result.mapError { explain($0) }.get()
    }
}
