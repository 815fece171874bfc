/// Everything the application must do after feeding the core some input, in this order:
/// 1. persist `hardState`, `entries` and `snapshot` (fsync) — `leaderMessages` may be sent
///    while this runs: a leader's AppendEntries need not wait for its own disk;
/// 2. send `messages`;
/// 3. apply `committedEntries` (and install `snapshot` into the state machine);
/// 4. serve `readStates` once applied up to their index;
/// 5. call `advance(ready)`.
public struct Ready: Sendable {
    public var softState: SoftState?
    public var hardState: HardState?
    public var entries: [Entry] = []
    public var snapshot: Snapshot?
    public var committedEntries: [Entry] = []
    /// Sent only after the persisted state above is durable (votes, acknowledgements).
    public var messages: [Message] = []
    /// A leader's replication traffic: safe to send before its own write finishes.
    public var leaderMessages: [Message] = []
    public var readStates: [ReadState] = []

    /// Whether `hardState` changed in term or vote, not only in commit index. A term or vote
    /// must be durable before any message goes out; a commit index need not be: after a
    /// restart the node learns it again from the leader (or, leading, from a majority).
    public var hardStateMustSync = false

    /// Whether the write must be fsynced before the messages go out. A `hardState` that only
    /// moved the commit index may be written later, with the next write that must sync.
    public var mustSync: Bool {
        hardStateMustSync || !entries.isEmpty || snapshot != nil
    }
}
