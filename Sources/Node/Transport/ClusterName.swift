/// What this node calls its cluster in peer messages and snapshot transfers, and whether it
/// accepts what a peer calls it. A cluster started from a backup or recovered from a survivor
/// has an incarnation (`DataDirectory.clusterIncarnation`), said as `id~incarnation`, so the
/// nodes it had before, which share its id and certificates, are refused. A node joins such a
/// cluster only when told its incarnation (`--cluster-id id~incarnation`, which `chorus-tools
/// recover` and `restore` print): a node that learned it from whoever spoke first could be
/// captured by a node of the old cluster (its empty directory would take the old one's vote
/// request and keep its term).
struct ClusterName: Sendable {
    /// The name said in every message this node sends, and the only one accepted.
    let wire: String

    init(id: String, incarnation: String?) {
        wire = incarnation.map { "\(id)~\($0)" } ?? id
    }

    /// Nil when a message naming `theirs` is for this node's cluster; otherwise why not.
    func refusal(of theirs: String) -> String? {
        theirs == wire ? nil : Self.sentence(ours: wire, theirs: theirs)
    }

    static func sentence(ours: String, theirs: String) -> String {
        let (id, incarnation) = split(ours)
        let (theirID, theirIncarnation) = split(theirs)
        guard id == theirID else { return "this node belongs to cluster '\(id)', not '\(theirID)'" }
        return "this node belongs to incarnation \(incarnation ?? "(the first)") of cluster '\(id)', not \(theirIncarnation ?? "the first"): the cluster was started again from a backup or recovered from a survivor, and its nodes from before take no part (a new member is started with --cluster-id \(id)~INCARNATION)"
    }

    /// `id~incarnation` as its parts (the incarnation nil when there is none).
    static func split(_ wire: String) -> (id: String, incarnation: String?) {
        guard let tilde = wire.lastIndex(of: "~") else { return (wire, nil) }
        return (String(wire[..<tilde]), String(wire[wire.index(after: tilde)...]))
    }
}
