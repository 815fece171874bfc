import LMDB

/// When sessions end, decided in apply by the log's clock, so every replica ends the same
/// sessions at the same entry.
///
/// The log's clock is the largest entry timestamp applied so far (leaders' clocks differ and
/// may step back; the maximum never does). A session ends `idle_ms` after its last use or at
/// `expires_ms`, whichever comes first. Its last use is kept to the minute, so a busy session
/// is rewritten at most once a minute, not on every send. Ended sessions are refused at once
/// and removed a few at a time by later logins, through the `session-deadlines` index
/// (deadline, token hash), so the table cannot grow with sessions nobody uses.
extension SessionRow {
    /// How stale `last_used_ms` may get before a use rewrites it.
    static let touchInterval: Int64 = 60_000

    /// The moment, by the log's clock, the session ends; nil when it never does.
    public var deadline: Int64? {
        var deadline: Int64?
        if idleMs > 0 {
            let (end, overflow) = lastUsedMs.addingReportingOverflow(idleMs)
            deadline = overflow ? .max : end
        }
        if expiresMs > 0 { deadline = min(deadline ?? .max, expiresMs) }
        return deadline
    }

    public func hasEnded(at clock: Int64) -> Bool {
        deadline.map { $0 <= clock } ?? false
    }

    /// The row's key in `session-deadlines`.
    static func deadlineKey(_ deadline: Int64, _ tokenHash: [UInt8]) -> [UInt8] {
        UInt64(bitPattern: max(0, deadline)).bigEndianBytes + tokenHash
    }
}

extension Tables {
    static let clockKey = Array("log-clock".utf8)

    func clock(_ txn: Transaction) throws -> Int64 {
        try txn.get(meta, Self.clockKey).flatMap { UInt64(bigEndianBytes: $0) }.map { Int64(bitPattern: $0) } ?? 0
    }
}
