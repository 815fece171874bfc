import Crypto
import Foundation
import Replica

extension SnapshotInfo {
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
