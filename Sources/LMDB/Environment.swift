import CLMDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An LMDB environment: one directory holding a memory-mapped B+tree file and its lock file.
///
/// `MDB_env` is safe to share between threads, and the environment is opened with
/// `MDB_NOTLS` so read transactions are not pinned to the thread that began them. Write
/// transactions are serialised by LMDB itself. That is why this class can be `Sendable`.
public final class Environment: @unchecked Sendable {
    /// How the environment trades durability for speed.
    public struct Options: Sendable {
        /// The size of the memory map at open: the most the data file may hold before the
        /// map grows. A reservation of address space, not of disk, except that with
        /// `writeMap` the file is made this large at once (sparse: holes take no disk).
        public var mapSize: Int = 1 << 36
        /// How far the map may grow: a write that fills the map doubles it (up to this) and
        /// runs again. At this size a full map is an error like a full disk.
        public var maxMapSize: Int = 1 << 40
        public var maxDatabases: Int = 16
        public var maxReaders: Int = 126
        /// `false` makes every commit return only after `fdatasync`: the log needs this.
        /// `true` leaves flushing to the OS (or to an explicit `sync()`): fine for state that
        /// can be rebuilt from the log.
        public var skipSync: Bool = false
        /// Open the environment read-only (the tools reading a live node's directory).
        public var readOnly: Bool = false
        /// Write pages in place in a writable map instead of copying each dirty page into the
        /// file with pwrite(2) at commit. Makes the data file as large as `mapSize` (sparse:
        /// holes take no disk).
        public var writeMap: Bool = false

        public init(mapSize: Int = 1 << 36, maxMapSize: Int = 1 << 40, maxDatabases: Int = 16, skipSync: Bool = false, readOnly: Bool = false, writeMap: Bool = false) {
            self.mapSize = mapSize
            self.maxMapSize = max(mapSize, maxMapSize)
            self.maxDatabases = maxDatabases
            self.skipSync = skipSync
            self.readOnly = readOnly
            self.writeMap = writeMap
        }
    }

    let handle: OpaquePointer
    /// The directory this environment lives in; every error names it.
    public let path: String
    public let options: Options
    /// Transactions hold it shared; growing the map holds it exclusively.
    let gate = ResizeGate()

    /// Opens (creating when needed) the environment in directory `path`.
    public init(path: String, options: Options = Options()) throws {
        self.path = path
        self.options = options
        if !options.readOnly {
            try Environment.makeDirectory(path)
        }
        // LMDB fsyncs the file it creates at each commit but never the directory that names
        // it: after a power loss the name could be gone while the data was acknowledged.
        let creating = !options.readOnly && !options.skipSync && !FileSystem.exists(path + "/data.mdb")
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create", path: path)
        guard let env else { throw LMDBError(code: ENOMEM, operation: "mdb_env_create", path: path) }
        do {
            try check(mdb_env_set_mapsize(env, options.mapSize), "mdb_env_set_mapsize", path: path)
            try check(mdb_env_set_maxdbs(env, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs", path: path)
            try check(mdb_env_set_maxreaders(env, UInt32(options.maxReaders)), "mdb_env_set_maxreaders", path: path)
            var flags = UInt32(MDB_NOTLS)
            if options.skipSync { flags |= UInt32(MDB_NOSYNC) }
            if options.readOnly { flags |= UInt32(MDB_RDONLY) }
            if options.writeMap && !options.readOnly { flags |= UInt32(MDB_WRITEMAP) }
            try check(mdb_env_open(env, path, flags, FileSystem.privateFileMode), "mdb_env_open", path: path)
            // A process killed inside a read transaction leaves its reader slot taken, and
            // LMDB keeps every page that reader could see: clear the slots of dead processes.
            var cleared: Int32 = 0
            try check(mdb_reader_check(env, &cleared), "mdb_reader_check", path: path)
            if creating {
                do { try FileSystem.sync(path) } catch let error as FileSystemError {
                    throw LMDBError(code: error.errno, operation: error.description, path: path)
                }
            }
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
    }

    deinit {
        mdb_env_close(handle)
    }

    /// Opens named databases, creating them unless the environment is read-only. Handles stay
    /// valid for the life of the environment.
    public func openDatabases(_ names: [String]) throws -> [Database] {
        try openDatabases(names, optional: []).map { $0! }
    }

    /// Opens (creating them unless read-only) the named databases. In a read-only environment
    /// a database named in `optional` that the file does not have (an older build wrote it)
    /// is nil instead of an error.
    public func openDatabases(_ names: [String], optional: Set<String>) throws -> [Database?] {
        if options.readOnly {
            // Handles opened in a read-only transaction survive only if it commits.
            let txn = try Transaction.begin(in: self, readOnly: true)
            let handles: [Database?]
            do {
                handles = try names.map { name in
                    do {
                        return try txn.openDatabase(name, create: false)
                    } catch let error as LMDBError where error.kind == .notFound && optional.contains(name) {
                        return nil
                    }
                }
            } catch {
                txn.abort()
                throw error
            }
            // A failed commit frees the transaction itself: no abort after it.
            try txn.commit()
            return handles
        }
        return try write { txn in
            try names.map { name in try txn.openDatabase(name, create: true) }
        }
    }

    /// Runs `body` in a read-write transaction, committing when it returns and aborting when
    /// it throws. Unless `skipSync` is set, the commit is durable (fsynced) when this returns.
    ///
    /// When the transaction fills the map, it is aborted, the map doubles (up to
    /// `maxMapSize`) and `body` runs again from the start: it must have no effect outside the
    /// transaction.
    public func write<R>(_ body: (inout Transaction) throws -> R) throws -> R {
        while true {
            do {
                return try gate.shared {
                    var txn = try Transaction.begin(in: self, readOnly: false)
                    let result: R
                    do {
                        result = try body(&txn)
                    } catch {
                        txn.abort()
                        throw error
                    }
                    // A failed commit frees the transaction itself.
                    try txn.commit()
                    return result
                }
            } catch let error as LMDBError where error.kind == .mapFull {
                try grow(after: error)
            } catch let error as LMDBError where error.kind == .mapResized {
                try adoptResize()
            }
        }
    }

    /// Runs `body` in a read-only snapshot transaction. Readers never block the writer.
    public func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        while true {
            do {
                return try gate.shared {
                    let txn = try Transaction.begin(in: self, readOnly: true)
                    defer { txn.abort() }
                    return try body(txn)
                }
            } catch let error as LMDBError where error.kind == .mapResized && error.operation == "mdb_txn_begin" {
                try adoptResize()
            }
        }
    }

    /// The current size of the memory map.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        return info.me_mapsize
    }

    /// Doubles the map after `error` (a full map), or rethrows it at `maxMapSize`.
    private func grow(after error: LMDBError) throws {
        try gate.exclusive {
            let current = mapSize
            guard current < options.maxMapSize else { throw error }
            let next = current > options.maxMapSize / 2 ? options.maxMapSize : current * 2
            try check(mdb_env_set_mapsize(handle, next), "mdb_env_set_mapsize \(next)", path: path)
        }
    }

    /// Another process grew the map: take the size it recorded.
    private func adoptResize() throws {
        try gate.exclusive {
            try check(mdb_env_set_mapsize(handle, 0), "mdb_env_set_mapsize", path: path)
        }
    }

    /// Flushes the data file to disk; used before discarding anything this environment made
    /// redundant when it was opened with `skipSync`.
    public func sync() throws {
        try check(mdb_env_sync(handle, 1), "mdb_env_sync", path: path)
    }

    /// Writes a consistent copy of the environment into the (empty, existing or not)
    /// directory `destination`. `compact` omits free pages and renumbers them.
    public func copy(to destination: String, compact: Bool) throws {
        try Environment.makeDirectory(destination)
        let flags: UInt32 = compact ? UInt32(MDB_CP_COMPACT) : 0
        try gate.shared { try check(mdb_env_copy2(handle, destination, flags), "mdb_env_copy2 to \(destination)", path: path) }
        // mdb_env_copy2 writes the copy without fsync: made durable here, so a caller may
        // rename it over a file that holds data.
        do {
            try FileSystem.sync(destination + "/data.mdb")
            try FileSystem.sync(destination)
        } catch let error as FileSystemError {
            throw LMDBError(code: error.errno, operation: error.description, path: path)
        }
    }

    /// Bytes used by the data file's pages in use (last page number × page size).
    public func usedBytes() throws -> Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        try check(mdb_env_info(handle, &info), "mdb_env_info", path: path)
        try check(mdb_env_stat(handle, &stat), "mdb_env_stat", path: path)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    static func makeDirectory(_ path: String) throws {
        do {
            try FileSystem.makePrivateDirectory(path)
        } catch let error as FileSystemError {
            throw LMDBError(code: error.errno, operation: error.description, path: path)
        }
    }
}

/// A handle to one named database (a B+tree) inside an environment.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    public let name: String
}
