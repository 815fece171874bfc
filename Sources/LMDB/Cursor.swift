import CLMDB

/// A position in one database, moved in key order. Valid only inside `withCursor`.
public struct Cursor {
    let handle: OpaquePointer
    let database: Database
    let path: String

    public typealias Row = (key: [UInt8], value: [UInt8])

    public mutating func first() throws -> Row? { try move(MDB_FIRST) }
    public mutating func last() throws -> Row? { try move(MDB_LAST) }
    public mutating func next() throws -> Row? { try move(MDB_NEXT) }
    public mutating func previous() throws -> Row? { try move(MDB_PREV) }

    /// Moves to the first key ≥ `key`.
    public mutating func seek(atOrAfter key: [UInt8]) throws -> Row? {
        // LMDB refuses zero-length keys; every key is at or after the empty one.
        if key.isEmpty { return try first() }
        return try key.withUnsafeBytes { keyBytes in
            var k = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            var v = MDB_val()
            return try finish(mdb_cursor_get(handle, &k, &v, MDB_SET_RANGE), &k, &v, "MDB_SET_RANGE")
        }
    }

    /// Stores `value` under `key` and leaves the cursor there. When the key falls on the page
    /// the cursor stands on, LMDB searches only that page: keys put in order are cheap.
    /// `append`: the key sorts after every key in the database (LMDB fails the put otherwise),
    /// so it goes at the end without a search.
    public mutating func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, append: Bool = false) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_cursor_put(handle, &k, &v, append ? UInt32(MDB_APPEND) : 0), "mdb_cursor_put \(database.name)", path: path)
    }

    /// Deletes the row under the cursor; the cursor then stands before the next row.
    public mutating func deleteCurrent() throws {
        try check(mdb_cursor_del(handle, 0), "mdb_cursor_del \(database.name)", path: path)
    }

    private mutating func move(_ op: MDB_cursor_op) throws -> Row? {
        var k = MDB_val()
        var v = MDB_val()
        return try finish(mdb_cursor_get(handle, &k, &v, op), &k, &v, "\(op)")
    }

    /// `op` is only rendered when there is an error to report: formatting it on every move
    /// cost more than the move itself.
    private func finish(_ code: Int32, _ k: inout MDB_val, _ v: inout MDB_val, _ op: @autoclosure () -> String) throws -> Row? {
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_cursor_get(\(op())) \(database.name)", path: path)
        let key = Array(UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size))
        let value = Array(UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
        return (key, value)
    }
}

extension Cursor {
    /// Every row whose key starts with `prefix`, in key order, from `start` (default: the
    /// prefix itself) on. Stops early when `body` returns false.
    public mutating func forEach(prefix: [UInt8], from start: [UInt8]? = nil, _ body: (Row) throws -> Bool) throws {
        var row = try seek(atOrAfter: start ?? prefix)
        while let current = row, current.key.starts(with: prefix) {
            guard try body(current) else { return }
            row = try next()
        }
    }
}
