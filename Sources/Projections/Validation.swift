/// The input rules of the chat service, shared by the node (which checks before proposing)
/// and the state machine (which checks again when applying, so a bad entry cannot corrupt it).
public enum Validation {
    public static let maxNameLength = 32
    public static let maxBodyBytes = 64 * 1024
    public static let maxPatternLength = 64
    public static let maxPageSize = 1000
    public static let tokenHashLength = 32

    static func isNameCharacter(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
    }

    /// Account names: 1–32 of letters, digits, `_`, `.`, `-`.
    public static func accountName(_ name: String) throws(Rejection) {
        let bytes = name.utf8
        guard !bytes.isEmpty else { throw Rejection(.invalidArgument, "the account name is empty") }
        guard bytes.count <= maxNameLength else {
            throw Rejection(.invalidArgument, "the account name is longer than \(maxNameLength) characters")
        }
        guard bytes.allSatisfy(isNameCharacter) else {
            throw Rejection(.invalidArgument, "the account name '\(name)' may only hold letters, digits, '_', '.' and '-'")
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

    static func tokenHash(_ hash: [UInt8]) throws(Rejection) {
        guard hash.count == tokenHashLength else { throw Rejection.noSession }
    }
}
