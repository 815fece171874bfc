/// Why a command had no effect. Deterministic: every replica rejects the same command for the
/// same reason, and the node turns the code into the matching gRPC status.
public struct Rejection: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: UInt32, Sendable {
        case invalidArgument = 1
        case alreadyExists = 2
        case notFound = 3
        case unauthenticated = 4
        case permissionDenied = 5
        case failedPrecondition = 6
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static let noSession = Rejection(.unauthenticated, "the session is unknown or has ended; log in again")
    static let sessionEnded = Rejection(.unauthenticated, "the session has expired; log in again")
}
