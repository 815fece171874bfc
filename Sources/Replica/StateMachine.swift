import Raft

/// What a replica applies its committed log to.
///
/// The split follows etcd's raft and its applications: the replica loop owns consensus, the
/// log's durability and the callers waiting for answers; the machine owns what an entry means.
/// The loop knows nothing of chat, so it is exercised with a machine a few lines long
/// (`ReplicaLoopTests`), and the chat projections (`ChatMachine`) are one machine among any.
///
/// The loop calls every requirement from its own thread, one at a time, except
/// `takeSnapshot`, which runs on a thread of its own while the loop goes on applying: the
/// machine must let it read a consistent copy meanwhile (LMDB's read transactions do).
public protocol StateMachine: AnyObject, Sendable {
    /// What applying one command yields for the caller who proposed it.
    associatedtype Output: Sendable
    /// Where the machine keeps its snapshots.
    associatedtype Snapshots: SnapshotFiles

    /// Where the machine stands in the log: after a restart the loop applies from the entry
    /// after `index`, and `configuration` is the membership as of that entry.
    func position() throws -> AppliedPosition

    /// Applies committed entries, in log order, each once: never one at or below `position()`
    /// or a snapshot installed. Returns the output of each entry that
    /// carried a command, with its index. A throw stops the node: a replica that cannot take
    /// what every other one applies must not go on and diverge. The machine need not make the
    /// result durable: the log replays it after a crash (see `sync`).
    func apply(_ entries: [CommittedLogEntry]) throws -> [(index: Index, output: Output)]

    /// Leadership moved to or away from this node. Returns commands for a new leader to
    /// propose before any other (the chat machine detaches every subscription, whose streams
    /// lived on the old leader).
    func leadershipChanged(leading: Bool) -> [[UInt8]]

    /// Makes what was applied durable: the log behind it may be discarded afterwards.
    func sync() throws

    /// Copies the state as applied so far into `store`; `termAt` gives a log index's term.
    /// Runs off the loop's thread.
    func takeSnapshot(into store: Snapshots, termAt: (Index) throws -> Term?) throws -> SnapshotInfo

    /// Replaces the whole state by a snapshot the store holds (complete and verified).
    func install(_ snapshot: SnapshotInfo, from store: Snapshots) throws

    /// The loop ended: nothing more is applied.
    func stopped()

    /// The refusal the loop stops with at a membership entry it cannot decode (one a newer
    /// build wrote), in the machine's words.
    func undecodableEntry(at index: Index, what: String) -> any MachineRefusal
}

extension StateMachine {
    public func undecodableEntry(at index: Index, what: String) -> any MachineRefusal {
        UndecodableEntry(index: index, what: what)
    }
}

/// An entry this build cannot decode, when the machine has no words of its own for it.
public struct UndecodableEntry: MachineRefusal {
    public let index: Index
    public let what: String

    public var description: String {
        "entry \(index) is \(what); this build cannot apply it, so the node stops rather than diverge: upgrade it"
    }
}
