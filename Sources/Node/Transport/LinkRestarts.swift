/// How long a failed peer link waits before it starts again: doubling from 100 ms to 5 s while
/// it keeps failing, back to the start once a client ran. The link's streams have their own,
/// shorter backoff; this one is for the client as a whole (a transport that cannot be set
/// up, a client that ended with an error or stopped by itself).
struct LinkRestarts {
    static let initial = Duration.milliseconds(100)
    static let limit = Duration.seconds(5)

    private(set) var next = LinkRestarts.initial

    /// The client failed: the wait before the next start.
    mutating func failed() -> Duration {
        defer { next = min(next * 2, Self.limit) }
        return next
    }

    /// A client ran (and ended without an error): the next failure waits the least again.
    mutating func succeeded() {
        next = Self.initial
    }
}
