/// When a leader may raise the cluster version: the rule the node follows and the simulation
/// checks, in one place.
///
/// The cluster version says what the log may hold. It rises only to a version every member
/// (voters and learners alike, the leader included) has said its build applies, so no member
/// can meet an entry it does not know; and it never falls. A member not heard from holds it
/// where it is: it may run anything.
public enum ClusterVersionRule {
    /// The version to propose, if any: the lowest version all members apply, when that is
    /// above the committed one. `applies` gives what a member's build applies, nil when
    /// unknown.
    public static func next(committed: UInt32, members: [NodeID], applies: (NodeID) -> UInt32?) -> UInt32? {
        var lowest = UInt32.max
        for member in members {
            guard let version = applies(member) else { return nil }
            lowest = min(lowest, version)
        }
        guard !members.isEmpty, lowest != .max, lowest > committed else { return nil }
        return lowest
    }
}
