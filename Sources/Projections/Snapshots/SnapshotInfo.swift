import Crypto
import Foundation

/// What a stored snapshot holds: the log position of the projections it copies, their size
/// and checksum. Kept next to the copy as `info.json`, and sent ahead of the file when a
/// follower installs it.
public struct SnapshotInfo: Sendable, Equatable, Codable {
    public var index: UInt64
    public var term: UInt64
    /// The cluster configuration at `index`, encoded by the consensus layer (empty: the
    /// bootstrap configuration).
    public var configuration: [UInt8]
    public var size: UInt64
    public var sha256: [UInt8]

    public init(index: UInt64, term: UInt64, configuration: [UInt8], size: UInt64, sha256: [UInt8]) {
        self.index = index
        self.term = term
        self.configuration = configuration
        self.size = size
        self.sha256 = sha256
    }

    /// The directory name: zero-padded so names sort in log order.
    public var name: String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "-" + String(term)
    }

    public var checksumHex: String {
        sha256.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// SHA-256 of a file, read in blocks.
    public static func checksum(of path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FileSystemError("cannot open \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
            hasher.update(data: block)
        }
        return Array(hasher.finalize())
    }
}

struct FileSystemError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
