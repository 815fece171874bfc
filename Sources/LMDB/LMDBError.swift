import CLMDB

/// An error returned by LMDB, with the operation that failed and the environment's path so a
/// log line alone is enough to tell which file on which node is in trouble.
public struct LMDBError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The LMDB (or errno) code, as returned by the C library.
    public let code: Int32
    /// The C function or logical operation that failed, e.g. `mdb_txn_commit`.
    public let operation: String
    /// The environment's directory.
    public let path: String

    public init(code: Int32, operation: String, path: String) {
        self.code = code
        self.operation = operation
        self.path = path
    }

    /// The well-known LMDB failures a caller may want to switch on.
    public enum Kind: Sendable, Equatable {
        case keyExists
        case notFound
        case pageNotFound
        case corrupted
        case panic
        case versionMismatch
        case invalid
        case mapFull
        case databasesFull
        case readersFull
        case transactionFull
        case cursorFull
        case pageFull
        case mapResized
        case incompatible
        case badReaderSlot
        case badTransaction
        case badValueSize
        case badDatabaseHandle
        /// An operating-system `errno` (EACCES, ENOSPC, …).
        case system(Int32)
    }

    public var kind: Kind {
        switch code {
        case MDB_KEYEXIST: .keyExists
        case MDB_NOTFOUND: .notFound
        case MDB_PAGE_NOTFOUND: .pageNotFound
        case MDB_CORRUPTED: .corrupted
        case MDB_PANIC: .panic
        case MDB_VERSION_MISMATCH: .versionMismatch
        case MDB_INVALID: .invalid
        case MDB_MAP_FULL: .mapFull
        case MDB_DBS_FULL: .databasesFull
        case MDB_READERS_FULL: .readersFull
        case MDB_TXN_FULL: .transactionFull
        case MDB_CURSOR_FULL: .cursorFull
        case MDB_PAGE_FULL: .pageFull
        case MDB_MAP_RESIZED: .mapResized
        case MDB_INCOMPATIBLE: .incompatible
        case MDB_BAD_RSLOT: .badReaderSlot
        case MDB_BAD_TXN: .badTransaction
        case MDB_BAD_VALSIZE: .badValueSize
        case MDB_BAD_DBI: .badDatabaseHandle
        default: .system(code)
        }
    }

    public var description: String {
        let message = String(cString: mdb_strerror(code))
        return "LMDB \(operation) failed at \(path): \(message) (\(code))"
    }
}

@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String, path: String) throws(LMDBError) {
    if code != MDB_SUCCESS {
        throw LMDBError(code: code, operation: operation(), path: path)
    }
}
