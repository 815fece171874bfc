import Replica

/// What a build of Chorus can apply, and what each cluster version adds to the log.
///
/// The log is forever: every replica applies every entry exactly as every other replica does,
/// whichever build it runs. So what an entry may be is fixed by the *cluster version*, a
/// number in the log itself (`SetClusterVersion`), raised by a leader only once every member
/// advertises a build that applies it (etcd's cluster version, CockroachDB's finalisation).
///
/// - Cluster version 1: the log as the releases before cluster versions wrote it: Raft entry
///   kinds 0 (normal) and 1 (configuration); commands of versions 1 and 2 with the kinds
///   `create_account` … `detach_all` (fields 10–19); and `set_cluster_version`, the entry
///   that raises the version (a release that predates it never meets it: it is proposed only
///   once every member advertises version 2).
/// - Cluster version 2: `edit_message`.
/// - Cluster version 3: groups (`create_group` … `send_group_message`, fields 22–28), and what
///   the commands every conversation shares do with a group's messages (acknowledge, delete,
///   edit, and an account's deletion leaving its groups); a deleted account's name and id are
///   remembered (`former-users`), so its conversations stay readable.
public struct BuildVersions: Sendable, Equatable, CustomStringConvertible {
    /// The newest cluster version this build applies.
    public var maxClusterVersion: UInt32

    public init(maxClusterVersion: UInt32) {
        self.maxClusterVersion = maxClusterVersion
    }

    /// This build.
    public static let current = BuildVersions(maxClusterVersion: 3)
    /// The release this build is, for people (`chorus status`).
    public static let release = "0.4.0"
    /// What a peer that advertises nothing applies: the releases before cluster versions.
    public static let unadvertised = BuildVersions(maxClusterVersion: 1)

    /// Command formats (`Command.version`) this build applies: 1 remembers only each client's
    /// newest request; 2 keeps a window of results (`ExactlyOnce`). Not tied to the cluster
    /// version: both were in the log before cluster versions existed.
    public static let commandVersions: ClosedRange<UInt32> = 1...2
    /// Raft entry kinds: 0 a command (or a leader's empty entry), 1 a configuration change.
    public static let entryKinds: ClosedRange<UInt8> = 0...1

    /// The cluster version from which the log may hold a command of this kind.
    static func introduced(_ kind: Command.OneOf_Kind) -> UInt32 {
        switch kind {
        case .createAccount, .openSession, .closeSession, .sendMessage, .acknowledge, .deleteMessages,
             .deleteAccount, .attach, .detach, .detachAll, .setClusterVersion:
            1
        case .editMessage:
            2
        case .createGroup, .addGroupMembers, .removeGroupMembers, .leaveGroup, .renameGroup, .setGroupAdmin, .sendGroupMessage:
            3
        }
    }

    /// Whether this build applies commands of `kind`.
    public func knows(_ kind: Command.OneOf_Kind) -> Bool {
        Self.introduced(kind) <= maxClusterVersion
    }

    public var description: String {
        "cluster versions 1...\(maxClusterVersion), command versions \(Self.commandVersions), entry kinds \(Self.entryKinds)"
    }
}

/// An entry this build cannot apply exactly as its peers would. Never turned into a
/// rejection: the node that meets it stops before anything of its batch is written, and an
/// operator upgrades its binary (the newer build knows it) or restores it from a peer.
public struct UnknownEntry: MachineRefusal, Equatable, Sendable {
    public var index: UInt64
    /// What this build could not apply, in a few words.
    public var what: String
    public var build: BuildVersions

    public init(index: UInt64, what: String, build: BuildVersions) {
        self.index = index
        self.what = what
        self.build = build
    }

    public var description: String {
        "log entry \(index) is \(what), which this build (release \(BuildVersions.release): \(build)) cannot apply; stopping before it changes anything. Run a build that applies it (a newer release) on this data directory"
    }
}

/// The versions of the files a build reads and writes.
public enum FormatVersion {
    /// The projections (and the snapshots copied from them): the tables `Tables.names`, their
    /// keys and rows as `state.proto` defines them.
    public static let projections: UInt32 = 1
}

/// A data file written by a newer build than this one.
public struct NewerFormat: Error, CustomStringConvertible, Equatable, Sendable {
    public var what: String
    public var path: String
    public var found: UInt32
    public var known: UInt32

    public init(what: String, path: String, found: UInt32, known: UInt32) {
        self.what = what
        self.path = path
        self.found = found
        self.known = known
    }

    public var description: String {
        "\(what) in \(path) has format version \(found), newer than this build (release \(BuildVersions.release)) reads (\(known)): a newer release wrote it; run that release, or restore this data directory from a backup"
    }
}

/// A node refuses to start on a data directory whose cluster runs a version its build does
/// not apply: it would stop at the first entry of it, or misread it.
public struct BuildTooOld: Error, CustomStringConvertible, Equatable, Sendable {
    public var clusterVersion: UInt32
    public var build: BuildVersions
    public var dataDirectory: String

    public init(clusterVersion: UInt32, build: BuildVersions, dataDirectory: String) {
        self.clusterVersion = clusterVersion
        self.build = build
        self.dataDirectory = dataDirectory
    }

    public var description: String {
        "the cluster of \(dataDirectory) runs cluster version \(clusterVersion), and this build (release \(BuildVersions.release)) applies cluster versions up to \(build.maxClusterVersion): start a build that applies cluster version \(clusterVersion) on it (a downgrade is possible only until the version is raised)"
    }
}
