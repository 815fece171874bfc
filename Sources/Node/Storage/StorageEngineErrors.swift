import LMDB
import LogStore
import Replica

/// LMDB reports the C library's error numbers (ENOSPC, EIO, …) as its codes.
extension LMDBError: StorageEngineError {
    public var errorNumber: Int32? { code }
    public var failedPath: String? { path }
    public var damagedData: Bool { false }
}

extension LogStoreError: StorageEngineError {
    public var errorNumber: Int32? { nil }
    public var failedPath: String? {
        switch self {
        case let .corruptEntry(_, path), let .notContiguous(_, _, path), let .corruptRecord(_, path), let .newerFormat(_, _, path): path
        case .unorderedBatch: nil
        }
    }
    public var damagedData: Bool {
        if case .corruptEntry = self { true } else { false }
    }
}
