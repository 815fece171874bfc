import Crypto
import Foundation
import LMDB
import Node
import Projections
import Raft
import ToolSupport

/// A backup file: one file that says what it holds and proves it is whole.
///
///     CHORUS-BACKUP 1\n
///     {metadata as JSON}\n
///     <the projections' LMDB data file, `size` bytes>
///     \nSHA256 <hex of every byte before this line>\n
///
/// The metadata names the cluster, the node it was taken from, the index and term it
/// reflects, the members then, the cluster version and formats, and the copy's size, SHA-256
/// and digest (the same as `chorus-tools status` prints for a replica at that index).
struct BackupFile {
    static let magic = "CHORUS-BACKUP 1\n"

    struct Member: Codable, Equatable {
        var id: UInt64
        var voter: Bool
        var peer: String
        var client: String?
    }

    struct Metadata: Codable, Equatable {
        var cluster: String
        var node: UInt64
        var index: UInt64
        var term: UInt64
        var members: [Member]
        /// The configuration as the consensus layer encodes it, base64.
        var configuration: Data
        var clusterVersion: UInt32
        var projectionsFormat: UInt32
        var release: String
        var createdAt: String
        var size: UInt64
        var sha256: String
        var digest: String
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func members(of configuration: [UInt8]) -> [Member] {
        guard let decoded = ClusterConfiguration(encoded: configuration) else { return [] }
        return decoded.members.map { id in
            let addresses = decoded.contexts[id].flatMap(MemberDirectory.Addresses.init(context:))
            return Member(id: id, voter: decoded.voters.contains(id), peer: addresses?.peer.description ?? "", client: addresses?.client?.description)
        }
    }

    /// Writes `metadata` and the data file at `data` to `path` durably (a temporary file,
    /// fsynced, renamed).
    static func write(_ metadata: Metadata, data: String, to path: String) throws {
        let temporary = path + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
              let out = FileHandle(forWritingAtPath: temporary), let input = FileHandle(forReadingAtPath: data) else {
            throw ToolError("cannot write \(temporary)")
        }
        defer { try? input.close() }
        var hasher = SHA256()
        func emit(_ bytes: Data) throws {
            hasher.update(data: bytes)
            try out.write(contentsOf: bytes)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try emit(Data(magic.utf8))
        try emit(try encoder.encode(metadata) + Data("\n".utf8))
        while let block = try input.read(upToCount: 1 << 20), !block.isEmpty { try emit(block) }
        try out.write(contentsOf: Data("\nSHA256 \(hex(hasher.finalize()))\n".utf8))
        try out.synchronize()
        try out.close()
        try FileSystem.rename(temporary, to: path)
    }

    /// Reads and checks `path` (whole-file checksum, sizes, the copy's SHA-256), and extracts
    /// the copy into `directory/data.mdb`. Returns the metadata.
    static func open(_ path: String, extractingInto directory: String) throws -> Metadata {
        guard let file = FileHandle(forReadingAtPath: path) else { throw ToolError("cannot open \(path)") }
        defer { try? file.close() }
        let total = FileSystem.size(path) ?? 0
        let head = try file.read(upToCount: 1 << 20) ?? Data()
        guard head.starts(with: Data(magic.utf8)) else { throw ToolError("\(path) is not a Chorus backup (it does not start with '\(magic.dropLast())')") }
        let afterMagic = head.index(head.startIndex, offsetBy: magic.utf8.count)
        guard let newline = head[afterMagic...].firstIndex(of: UInt8(ascii: "\n")) else {
            throw ToolError("\(path) is damaged: its metadata line does not end")
        }
        let metadata: Metadata
        do {
            metadata = try JSONDecoder().decode(Metadata.self, from: head[afterMagic..<newline])
        } catch {
            throw ToolError("\(path) is damaged: its metadata cannot be read (\(error))")
        }
        let headerBytes = UInt64(head.distance(from: head.startIndex, to: newline) + 1)
        let trailerBytes: UInt64 = 8 + 64 + 1
        guard total == headerBytes + metadata.size + trailerBytes else {
            throw ToolError("\(path) is damaged or cut short: it is \(total) bytes, and its metadata says \(headerBytes + metadata.size + trailerBytes)")
        }
        try FileSystem.makePrivateDirectory(directory)
        guard FileManager.default.createFile(atPath: directory + "/data.mdb", contents: nil, attributes: [.posixPermissions: 0o600]),
              let out = FileHandle(forWritingAtPath: directory + "/data.mdb") else { throw ToolError("cannot write \(directory)/data.mdb") }
        var whole = SHA256()
        var copy = SHA256()
        try file.seek(toOffset: 0)
        whole.update(data: try file.read(upToCount: Int(headerBytes)) ?? Data())
        var left = metadata.size
        while left > 0 {
            guard let block = try file.read(upToCount: Int(min(left, 1 << 20))), !block.isEmpty else { throw ToolError("\(path) is cut short") }
            whole.update(data: block)
            copy.update(data: block)
            try out.write(contentsOf: block)
            left -= UInt64(block.count)
        }
        try out.synchronize()
        try out.close()
        let trailer = String(decoding: try file.read(upToCount: Int(trailerBytes)) ?? Data(), as: UTF8.self)
        guard trailer == "\nSHA256 \(hex(whole.finalize()))\n" else {
            throw ToolError("\(path) is damaged: its checksum does not match its bytes")
        }
        guard hex(copy.finalize()) == metadata.sha256 else {
            throw ToolError("\(path) is damaged: the copy's SHA-256 is not the one its metadata records")
        }
        return metadata
    }
}
