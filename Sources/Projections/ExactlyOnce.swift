import LMDB

/// Exactly-once per client (Raft dissertation §6.3), with a window of results as LogCabin
/// keeps them.
///
/// Version 1 commands remember only each client's newest request, so a client may have one
/// request in flight per id. From version 2 on, the outcome of every request at or above the
/// client's `floor` is kept in `results`: a client may pipeline many requests under one id,
/// they may arrive in any order, and a retry of any of them returns its original outcome.
/// The client raises the floor by telling its lowest unanswered sequence
/// (`first_outstanding`); one that never does keeps at least its latest `maxKept` results. A
/// request below the floor is refused: it may have been applied, and its result is gone.
enum ExactlyOnce {
    /// Results kept at least for a client that does not say which it still awaits; no client
    /// keeps more than twice as many, so none can grow the table without bound.
    static let maxKept: UInt32 = 1_024

    enum Verdict {
        /// Not seen before: apply it.
        case new
        /// Already applied: this is what it returned.
        case repeated(Result<UInt64, Rejection>)
    }

    /// Whether `command` from the client whose row is `row` is new.
    static func admit(_ command: Command, row: ClientRow?, _ txn: Transaction, _ tables: Tables) throws -> Verdict {
        guard let row else { return .new }
        if command.sequence == row.sequence { return .repeated(row.outcome.result) }
        if command.version < 2 {
            if command.sequence < row.sequence {
                return .repeated(.failure(Rejection(.failedPrecondition, "request \(command.sequence) of client \(command.clientID) is older than request \(row.sequence), already applied")))
            }
            return .new
        }
        if command.sequence < row.floor {
            return .repeated(.failure(Rejection(.failedPrecondition, "request \(command.sequence) of client \(command.clientID) is below its exactly-once window (results are kept from request \(row.floor) on): it may have been applied; check before sending it again")))
        }
        if command.sequence < row.sequence, let stored = try txn.get(tables.results, resultKey(command.clientID, command.sequence)) {
            return .repeated(try Outcome(serializedBytes: stored).result)
        }
        return .new
    }

    /// A client silent this long, by the log's clock, is forgotten with its results (Raft
    /// dissertation §6.3: every server expires a client session at the same point in the log).
    /// A retry a day late would be applied again; the client library gives up within seconds.
    static let idleExpiryMs: Int64 = 24 * 3600 * 1000
    /// Clients forgotten at most per new client.
    static let expiredPerNewClient = 16

    /// The client's row once `command`, applied at `index` when the log's clock read `clock`,
    /// produced `outcome`; writes and prunes its `results` rows. A new client first removes a
    /// few that have been silent for `idleExpiryMs`.
    static func record(_ command: Command, index: UInt64, outcome: Outcome, row old: ClientRow?, clock: Int64,
                       _ txn: inout Transaction, _ tables: Tables, _ gathered: ApplyBatch) throws -> ClientRow {
        if old == nil { try forgetIdleClients(clock: clock, &txn, tables, gathered) }
        var row = old ?? ClientRow()
        // The idle index holds each client under its last minute: moved at most once a minute.
        let minute = clock / 60_000
        if old == nil || old!.lastMs / 60_000 != minute {
            if let old { _ = try txn.delete(tables.clientIdle, idleKey(old.lastMs / 60_000, command.clientID)) }
            try txn.put(tables.clientIdle, idleKey(minute, command.clientID), [])
        }
        row.lastMs = clock
        guard command.version >= 2 else {
            // The newest request only; the window of a client that also sent version 2
            // commands stays as it is.
            row.sequence = command.sequence
            row.index = index
            row.outcome = outcome
            return row
        }
        // The request itself is outstanding until answered: the floor never passes it.
        let floor = min(command.firstOutstanding, command.sequence)
        // The newest result lives in the row; `results` holds the others. A client with one
        // request in flight (every one the client library makes) thus writes no result rows:
        // when its next request arrives, the previous one is already below the floor.
        if command.sequence > row.sequence {
            if old != nil && row.sequence >= max(floor, row.floor) {
                try txn.put(tables.results, resultKey(command.clientID, row.sequence), try row.outcome.serializedBytes())
                row.kept += 1
            }
            row.sequence = command.sequence
            row.index = index
            row.outcome = outcome
        } else {
            try txn.put(tables.results, resultKey(command.clientID, command.sequence), try outcome.serializedBytes())
            row.kept += 1
        }
        if floor > row.floor {
            // No result rows (the common case): nothing to look for.
            if row.kept > 0 {
                row.kept -= min(row.kept, try forget(command.clientID, below: floor, from: row.floor, txn: &txn, tables))
            }
            row.floor = floor
        }
        // A client that never says keeps at least its latest `maxKept` results: past twice
        // that, the oldest half goes in one pass over consecutive keys.
        if row.kept >= 2 * maxKept {
            let (removed, next) = try forgetOldest(command.clientID, count: Int(row.kept - maxKept + 1), txn: &txn, tables)
            row.kept -= min(row.kept, removed)
            row.floor = max(row.floor, next)
        }
        return row
    }

    /// Removes up to `expiredPerNewClient` clients silent since before `clock - idleExpiryMs`.
    static func forgetIdleClients(clock: Int64, _ txn: inout Transaction, _ tables: Tables, _ gathered: ApplyBatch) throws {
        let cutoff = (clock - idleExpiryMs) / 60_000
        var idle: [(key: [UInt8], client: String)] = []
        try txn.withCursor(tables.clientIdle) { cursor in
            var row = try cursor.first()
            while let current = row, idle.count < expiredPerNewClient,
                  let minute = UInt64(bigEndianBytes: current.key), Int64(bitPattern: minute) < cutoff {
                idle.append((current.key, String(decoding: current.key.dropFirst(8), as: UTF8.self)))
                row = try cursor.next()
            }
        }
        for (key, client) in idle {
            _ = try txn.delete(tables.clientIdle, key)
            _ = try txn.delete(tables.clients, Array(client.utf8))
            _ = try forget(client, below: .max, from: 0, txn: &txn, tables)
            gathered.forget(client: client)
        }
    }

    static func idleKey(_ minute: Int64, _ client: String) -> [UInt8] {
        UInt64(bitPattern: max(0, minute)).bigEndianBytes + Array(client.utf8)
    }

    /// Deletes the client's results with sequences in `start..<end`; returns how many.
    private static func forget(_ client: String, below end: UInt64, from start: UInt64, txn: inout Transaction, _ tables: Tables) throws -> UInt32 {
        let prefix = keyPrefix(client)
        var removed: UInt32 = 0
        try txn.withCursor(tables.results) { cursor in
            var row = try cursor.seek(atOrAfter: resultKey(client, start))
            while let current = row, current.key.starts(with: prefix),
                  let sequence = UInt64(bigEndianBytes: current.key, at: prefix.count), sequence < end {
                try cursor.deleteCurrent()
                removed += 1
                row = try cursor.next()
            }
        }
        return removed
    }

    /// Deletes the client's `count` oldest results; returns how many went and the sequence
    /// after the last of them (the new floor).
    private static func forgetOldest(_ client: String, count: Int, txn: inout Transaction, _ tables: Tables) throws -> (UInt32, UInt64) {
        let prefix = keyPrefix(client)
        var removed: UInt32 = 0
        var next: UInt64 = 0
        try txn.withCursor(tables.results) { cursor in
            var row = try cursor.seek(atOrAfter: prefix)
            while removed < count, let current = row, current.key.starts(with: prefix),
                  let sequence = UInt64(bigEndianBytes: current.key, at: prefix.count) {
                try cursor.deleteCurrent()
                removed += 1
                next = sequence == .max ? .max : sequence + 1
                row = try cursor.next()
            }
        }
        return (removed, next)
    }

    /// The client id's length, then its bytes: no id's keys run into another's.
    static func keyPrefix(_ client: String) -> [UInt8] {
        [UInt8(client.utf8.count)] + Array(client.utf8)
    }

    static func resultKey(_ client: String, _ sequence: UInt64) -> [UInt8] {
        keyPrefix(client) + sequence.bigEndianBytes
    }
}
