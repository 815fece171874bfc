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
        /// The largest size the data file may grow to. It is a reservation of address space,
        /// not of disk: the file grows as pages are written.
        public var mapSize: Int = 1 << 36
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

        public init(mapSize: Int = 1 << 36, maxDatabases: Int = 16, skipSync: Bool = false, readOnly: Bool = false, writeMap: Bool = false) {
            self.mapSize = mapSize
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

    /// Opens (creating when needed) the environment in directory `path`.
    public init(path: String, options: Options = Options()) throws {
        self.path = path
        self.options = options
        if !options.readOnly {
            try Environment.makeDirectory(path)
        }
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
            try check(mdb_env_open(env, path, flags, 0o644), "mdb_env_open", path: path)
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
        if options.readOnly {
            // Handles opened in a read-only transaction survive only if it commits.
            let txn = try Transaction.begin(in: self, readOnly: true)
            do {
                let handles = try names.map { name in try txn.openDatabase(name, create: false) }
                try txn.commit()
                return handles
            } catch {
                txn.abort()
                throw error
            }
        }
        return try write { txn in
            try names.map { name in try txn.openDatabase(name, create: true) }
        }
    }

    /// Runs `body` in a read-write transaction, committing when it returns and aborting when
    /// it throws. Unless `skipSync` is set, the commit is durable (fsynced) when this returns.
    public func write<R>(_ body: (inout Transaction) throws -> R) throws -> R {
        var txn = try Transaction.begin(in: self, readOnly: false)
        let result: R
        do {
            result = try body(&txn)
        } catch {
            txn.abort()
            throw error
        }
        try txn.commit()
        return result
    }

    /// Runs `body` in a read-only snapshot transaction. Readers never block the writer.
    public func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        let txn = try Transaction.begin(in: self, readOnly: true)
        defer { txn.abort() }
        return try body(txn)
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
        try check(mdb_env_copy2(handle, destination, flags), "mdb_env_copy2 to \(destination)", path: path)
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
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw LMDBError(code: errno, operation: "mkdir \(current)", path: path)
            }
        }
    }
}

/// A handle to one named database (a B+tree) inside an environment.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    public let name: String
}
