import Foundation

/// Bugs the fault-injection suite plants in a node to show that its checker catches each kind
/// of harm: one per rule of `chorus-lab chaos`'s checker. Set by environment variables that
/// only debug builds (the ones the tests run) read; a release binary ignores them, so no
/// setting can make a production node wrong on purpose.
public struct PlantedNodeBugs: Sendable, Equatable {
    /// `CHORUS_UNSAFE_ACK_ON_APPEND`: a send is acknowledged once the leader appended it,
    /// before it commits; a leader that fails loses acknowledged messages.
    public var acknowledgeOnAppend = false
    /// `CHORUS_UNSAFE_SKIP_DELETES`: DeleteMessages answers that it deleted, and deletes
    /// nothing (a delete that does not stick).
    public var skipDeletes = false
    /// `CHORUS_UNSAFE_DELETE_EXTRA`: DeleteMessages also deletes the oldest other message of
    /// the conversation (messages vanish that nobody deleted).
    public var deleteExtra = false
    /// `CHORUS_UNSAFE_LOCAL_READS`: reads skip the ReadIndex barrier and answer from this
    /// node's projections as they are (stale reads on a node cut off from the leader).
    public var localReads = false
    /// `CHORUS_TEST_ONE_VERSION_OLDER`: the build applies one cluster version less than it
    /// does (`NodeConfiguration.build`), as the release before it did: what an entry of a
    /// version it does not know does to a node is tested with it.
    public var oneVersionOlder = false

    public init() {}

    /// The variables, in debug builds only: a release binary does not even hold their names
    /// (`scripts/check-release.sh` looks).
    static var variables: [(name: String, path: WritableKeyPath<PlantedNodeBugs, Bool>)] {
        #if DEBUG
        [
            ("CHORUS_UNSAFE_ACK_ON_APPEND", \.acknowledgeOnAppend),
            ("CHORUS_UNSAFE_SKIP_DELETES", \.skipDeletes),
            ("CHORUS_UNSAFE_DELETE_EXTRA", \.deleteExtra),
            ("CHORUS_UNSAFE_LOCAL_READS", \.localReads),
            ("CHORUS_TEST_ONE_VERSION_OLDER", \.oneVersionOlder),
        ]
        #else
        []
        #endif
    }

    /// The bugs this process's environment plants: none in a release build, which never
    /// reads it.
    public static var fromProcessEnvironment: PlantedNodeBugs {
        #if DEBUG
        fromEnvironment(ProcessInfo.processInfo.environment)
        #else
        PlantedNodeBugs()
        #endif
    }

    /// The bugs `environment` plants, in a debug build; none in a release build.
    public static func fromEnvironment(_ environment: [String: String]) -> PlantedNodeBugs {
        var bugs = PlantedNodeBugs()
        for (name, path) in variables where environment[name] != nil { bugs[keyPath: path] = true }
        return bugs
    }

    /// The bugs set, for the node's warning (the version switch is no bug: it has its own).
    public var names: [String] {
        Self.variables.filter { self[keyPath: $0.path] && $0.path != \.oneVersionOlder }.map(\.name)
    }
}
