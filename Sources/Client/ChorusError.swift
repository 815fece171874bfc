import GRPCCore

/// What went wrong, in terms a caller can act on.
public enum ChorusError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(String)
    case alreadyExists(String)
    /// Wrong password, or a session that is unknown or ended.
    case wrongCredentials(String)
    /// The session may not do this (someone else's message).
    case notAuthorized(String)
    case invalidInput(String)
    /// No leader could be reached within the deadline; the outcome of a write is unknown
    /// (retrying it with the same request id is safe).
    case clusterUnavailable(String)
    case failedPrecondition(String)
    /// A node or the client is over a limit and the deadline left no time to wait for it.
    case busy(String)
    /// A write that may have been applied: an attempt reached a leader and its answer was
    /// lost, and no later attempt learned the outcome within the deadline. Retrying with the
    /// same request id is safe; sending it anew may store it twice.
    case outcomeUnknown(String)
    case other(String)

    public var description: String {
        switch self {
        case let .notFound(m), let .alreadyExists(m), let .wrongCredentials(m), let .notAuthorized(m),
             let .invalidInput(m), let .clusterUnavailable(m), let .failedPrecondition(m), let .busy(m), let .outcomeUnknown(m), let .other(m):
            m
        }
    }

    init(_ error: RPCError) {
        switch error.code {
        case .notFound: self = .notFound(error.message)
        case .alreadyExists: self = .alreadyExists(error.message)
        case .unauthenticated: self = .wrongCredentials(error.message)
        case .permissionDenied: self = .notAuthorized(error.message)
        case .invalidArgument, .outOfRange: self = .invalidInput(error.message)
        case .resourceExhausted: self = .busy(error.message)
        case .unavailable, .deadlineExceeded, .cancelled: self = .clusterUnavailable(error.message)
        case .failedPrecondition: self = .failedPrecondition(error.message)
        default: self = .other("\(error.code): \(error.message)")
        }
    }
}
