import Synchronization

/// What this node calls its cluster in peer messages and snapshot transfers, and whether it
/// accepts what a peer calls it. A cluster started from a backup or recovered from a survivor
/// has an incarnation (`DataDirectory.clusterIncarnation`), said as `id~incarnation`, so the
/// nodes it had before, which share its id and certificates, are refused. A node that joins
/// such a cluster with an empty data directory learns the incarnation from the first message
/// that names it, and records it; a node holding any data never adopts one.
final class ClusterName: Sendable {
    private enum State {
        /// This node belongs to exactly this incarnation.
        case fixed(String)
        /// No incarnation recorded: the plain id is accepted, and an incarnation of the same
        /// id is adopted while this node holds nothing.
        case adoptable(id: String)
    }

    private let state: Mutex<State>
    /// Whether this node's log is still empty (nothing applied, no term, no snapshot).
    private let holdsNothing: @Sendable () -> Bool
    /// Records an adopted incarnation durably.
    private let record: @Sendable (String) throws -> Void

    init(id: String, incarnation: String?, holdsNothing: @escaping @Sendable () -> Bool, record: @escaping @Sendable (String) throws -> Void) {
        state = Mutex(incarnation.map { .fixed("\(id)~\($0)") } ?? .adoptable(id: id))
        self.holdsNothing = holdsNothing
        self.record = record
    }

    /// The name said in every message this node sends.
    var wire: String {
        state.withLock { state in
            switch state {
            case let .fixed(name): name
            case let .adoptable(id): id
            }
        }
    }

    /// Nil when a message naming `theirs` is for this node's cluster; otherwise why not.
    func refusal(of theirs: String) -> String? {
        state.withLock { state in
            switch state {
            case let .fixed(ours):
                return theirs == ours ? nil : Self.sentence(ours: ours, theirs: theirs)
            case let .adoptable(id):
                if theirs == id { return nil }
                let (theirID, incarnation) = Self.split(theirs)
                guard theirID == id, let incarnation, holdsNothing() else { return Self.sentence(ours: id, theirs: theirs) }
                do {
                    try record(incarnation)
                } catch {
                    return "cannot record the cluster's incarnation \(incarnation): \(error)"
                }
                state = .fixed(theirs)
                return nil
            }
        }
    }

    static func sentence(ours: String, theirs: String) -> String {
        let (id, incarnation) = split(ours)
        let (theirID, theirIncarnation) = split(theirs)
        guard id == theirID else { return "this node belongs to cluster '\(id)', not '\(theirID)'" }
        return "this node belongs to incarnation \(incarnation ?? "(the first)") of cluster '\(id)', not \(theirIncarnation ?? "the first"): the cluster was started again from a backup or recovered from a survivor, and its nodes from before take no part"
    }

    static func split(_ wire: String) -> (id: String, incarnation: String?) {
        guard let tilde = wire.lastIndex(of: "~") else { return (wire, nil) }
        return (String(wire[..<tilde]), String(wire[wire.index(after: tilde)...]))
    }
}
