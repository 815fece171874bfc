import CLMDB

/// A transaction over an `Environment`, valid only inside the closure given to
/// `Environment.read` or `Environment.write`. Keys and values cross the boundary as byte
/// arrays, so no pointer into the map escapes.
public struct Transaction {
    let handle: OpaquePointer
    let environment: Environment
    public let isReadOnly: Bool

    static func begin(in environment: Environment, readOnly: Bool) throws -> Transaction {
        var txn: OpaquePointer?
        let flags: UInt32 = readOnly ? UInt32(MDB_RDONLY) : 0
        try check(mdb_txn_begin(environment.handle, nil, flags, &txn), "mdb_txn_begin", path: environment.path)
        return Transaction(handle: txn!, environment: environment, isReadOnly: readOnly)
    }

    func commit() throws {
        #if DEBUG
        if !isReadOnly, let injected = DiskFault.commitError(path: environment.path) {
            mdb_txn_abort(handle)
            throw LMDBError(code: injected, operation: "mdb_txn_commit (a fault injected by CHORUS_TEST_DISK_FAULT)", path: environment.path)
        }
        #endif
        try check(mdb_txn_commit(handle), "mdb_txn_commit", path: environment.path)
    }

    func abort() {
        mdb_txn_abort(handle)
    }

    func openDatabase(_ name: String, create: Bool) throws -> Database {
        var dbi = MDB_dbi()
        let flags: UInt32 = create ? UInt32(MDB_CREATE) : 0
        try check(mdb_dbi_open(handle, name, flags, &dbi), "mdb_dbi_open \(name)", path: environment.path)
        return Database(dbi: dbi, name: name)
    }

    /// The value stored under `key`, or nil.
    public func get(_ database: Database, _ key: [UInt8]) throws -> [UInt8]? {
        try withValue(database, key) { $0.map { Array($0) } }
    }

    /// Calls `body` with the stored bytes for `key` (nil when absent) without copying them.
    /// The buffer is only valid inside `body`.
    public func withValue<R>(_ database: Database, _ key: [UInt8], _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        var data = MDB_val()
        let code = key.withUnsafeBytes { keyBytes in
            var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_get(handle, database.dbi, &k, &data)
        }
        if code == MDB_NOTFOUND { return try body(nil) }
        try check(code, "mdb_get \(database.name)", path: environment.path)
        return try body(UnsafeRawBufferPointer(start: data.mv_data, count: data.mv_size))
    }

    /// Stores `value` under `key`, replacing any previous value.
    public mutating func put(_ database: Database, _ key: [UInt8], _ value: [UInt8], append: Bool = false) throws {
        let flags: UInt32 = append ? UInt32(MDB_APPEND) : 0
        let code = key.withUnsafeBytes { keyBytes in
            value.withUnsafeBytes { valueBytes in
                var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
                var v = MDB_val(mv_size: valueBytes.count, mv_data: UnsafeMutableRawPointer(mutating: valueBytes.baseAddress))
                return mdb_put(handle, database.dbi, &k, &v, flags)
            }
        }
        try check(code, "mdb_put \(database.name)", path: environment.path)
    }

    /// Removes `key`; returns whether it was there.
    @discardableResult
    public mutating func delete(_ database: Database, _ key: [UInt8]) throws -> Bool {
        let code = key.withUnsafeBytes { keyBytes in
            var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_del(handle, database.dbi, &k, nil)
        }
        if code == MDB_NOTFOUND { return false }
        try check(code, "mdb_del \(database.name)", path: environment.path)
        return true
    }

    /// Removes every key of `database`.
    public mutating func clear(_ database: Database) throws {
        try check(mdb_drop(handle, database.dbi, 0), "mdb_drop \(database.name)", path: environment.path)
    }

    /// Number of keys in `database`.
    public func count(_ database: Database) throws -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(handle, database.dbi, &stat), "mdb_stat \(database.name)", path: environment.path)
        return stat.ms_entries
    }

    /// Runs `body` with a cursor over `database`, closing it afterwards.
    public func withCursor<R>(_ database: Database, _ body: (inout Cursor) throws -> R) throws -> R {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, database.dbi, &cursor), "mdb_cursor_open \(database.name)", path: environment.path)
        var wrapped = Cursor(handle: cursor!, database: database, path: environment.path)
        defer { mdb_cursor_close(cursor) }
        return try body(&wrapped)
    }
}
