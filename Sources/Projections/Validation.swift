/// The input rules of the chat service, shared by the node (which checks before proposing)
/// and the state machine (which checks again when applying, so a bad entry cannot corrupt it).
public enum Validation {
    public static let maxNameLength = 32
    public static let maxBodyBytes = 64 * 1024
    public static let maxPatternLength = 64
    public static let maxPageSize = 1000
    /// Bytes of stored messages in one page; the page token continues where they ran out.
    public static let maxPageBytes = 1 << 20
    public static let tokenHashLength = 32

    static func isNameCharacter(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
    }

    /// Account names: 1–32 of letters, digits, `_`, `.`, `-`.
    public static func accountName(_ name: String) throws(Rejection) {
        try self.name(name, of: "account")
    }

    /// A name of `what` (an account, a group): 1–32 of letters, digits, `_`, `.`, `-`. The
    /// refusals are recorded outcomes in the log: their words never change.
    static func name(_ name: String, of what: String) throws(Rejection) {
        let bytes = name.utf8
        guard !bytes.isEmpty else { throw Rejection(.invalidArgument, "the \(what) name is empty") }
        guard bytes.count <= maxNameLength else {
            throw Rejection(.invalidArgument, "the \(what) name is longer than \(maxNameLength) characters")
        }
        guard bytes.allSatisfy(isNameCharacter) else {
            throw Rejection(.invalidArgument, "the \(what) name '\(name)' may only hold letters, digits, '_', '.' and '-'")
        }
    }

    /// Message bodies: not empty, at most 64 KiB of UTF-8.
    public static func messageBody(_ body: String) throws(Rejection) {
        guard !body.isEmpty else { throw Rejection(.invalidArgument, "the message is empty") }
        guard body.utf8.count <= maxBodyBytes else {
            throw Rejection(.invalidArgument, "the message is \(body.utf8.count) bytes; the limit is \(maxBodyBytes)")
        }
    }

    /// Glob patterns for listing accounts: name characters plus `*` and `?`.
    public static func pattern(_ pattern: String) throws(Rejection) {
        let bytes = Array(pattern.utf8)
        guard bytes.count <= maxPatternLength else {
            throw Rejection(.invalidArgument, "the pattern is longer than \(maxPatternLength) characters")
        }
        guard bytes.allSatisfy({ isNameCharacter($0) || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }) else {
            throw Rejection(.invalidArgument, "the pattern '\(pattern)' may only hold name characters, '*' and '?'")
        }
    }

    public static func pageSize(_ size: Int) throws(Rejection) {
        guard size >= 1 && size <= maxPageSize else {
            throw Rejection(.invalidArgument, "the page size must be between 1 and \(maxPageSize), not \(size)")
        }
    }

    /// Exactly-once client ids are keys of the clients table: LMDB takes keys of at most 511
    /// bytes, and no client needs more than this.
    public static let maxClientIDBytes = 128

    /// A write's request id: a client id of 1 to 128 bytes and a sequence of at least 1.
    public static func requestID(clientID: String, sequence: UInt64, firstOutstanding: UInt64 = 0) throws(Rejection) {
        guard !clientID.isEmpty, clientID.utf8.count <= maxClientIDBytes, sequence > 0, sequence <= maxMessageID else {
            throw Rejection(.invalidArgument, "every write needs a request_id: a client_id (1–\(maxClientIDBytes) bytes) and a sequence from 1 to 2^62")
        }
        guard firstOutstanding <= sequence else {
            throw Rejection(.invalidArgument, "request_id.first_outstanding (\(firstOutstanding)) is past the request's own sequence (\(sequence)), which awaits its answer")
        }
    }

    /// Message ids are log indexes: never 0, never past 2^62 (the largest index a node
    /// accepts from a peer).
    public static let maxMessageID: UInt64 = 1 << 62
    /// Sessions one user may have open; a login past it ends the oldest.
    public static let maxSessionsPerUser = 64
    /// Ids in one acknowledge or delete call.
    public static let maxIDsPerCall = 1_000
    /// PBKDF2 rounds a stored account may ask for: every login pays them.
    public static let maxPasswordIterations: UInt32 = 5_000_000

    public static func messageID(_ id: UInt64) throws(Rejection) {
        guard id >= 1 && id <= maxMessageID else {
            throw Rejection(.invalidArgument, "message id \(id) is not one this service issued (ids are 1 to 2^62)")
        }
    }

    /// The ids of one acknowledge or delete call: 1 to 1,000 of them, each a possible id.
    public static func messageIDs(_ ids: [UInt64]) throws(Rejection) {
        guard !ids.isEmpty else { throw Rejection(.invalidArgument, "no message ids given") }
        guard ids.count <= maxIDsPerCall else {
            throw Rejection(.invalidArgument, "\(ids.count) message ids in one call; the limit is \(maxIDsPerCall)")
        }
        for id in ids { try messageID(id) }
    }

    /// A history page token: the decimal id of the last message of the previous page, as
    /// this service writes it (digits only, no sign, no leading zero).
    public static func messagePageToken(_ token: String) throws(Rejection) -> UInt64 {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty, bytes.count <= 19, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), bytes[0] != 0x30,
              let id = UInt64(token), id <= maxMessageID
        else {
            throw Rejection(.invalidArgument, "the page token '\(token.prefix(64))' is not one this service issued")
        }
        return id
    }

    /// An account listing's page token: the last name of the previous page.
    public static func accountPageToken(_ token: String) throws(Rejection) {
        do {
            try accountName(token)
        } catch {
            throw Rejection(.invalidArgument, "the page token '\(token.prefix(64))' is not one this service issued")
        }
    }

    static func tokenHash(_ hash: [UInt8]) throws(Rejection) {
        guard hash.count == tokenHashLength else { throw Rejection.noSession }
    }
}
