import Projections
import Synchronization

/// The projections queries read. Installing a snapshot replaces them with another
/// environment; a query that already holds the previous one finishes on it, and it closes
/// when the last such query lets go.
public final class CurrentState: Sendable {
    private let value: Mutex<ChatState>

    init(_ state: ChatState) {
        value = Mutex(state)
    }

    public var state: ChatState { value.withLock { $0 } }

    func replace(with state: ChatState) {
        value.withLock { $0 = state }
    }
}
