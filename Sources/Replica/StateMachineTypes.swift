/// The log position a state machine's state reflects.
public struct AppliedPosition: Sendable, Equatable, Codable {
    public var index: UInt64
    public var term: UInt64
    /// The cluster configuration as of `index`, encoded by Raft (empty: the bootstrap one).
    public var configuration: [UInt8]

    public init(index: UInt64, term: UInt64, configuration: [UInt8]) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// A committed entry handed to the machine: a command (nil for Raft's own empty entries), or
/// a membership change, whose configuration after it the machine keeps with its state.
public struct CommittedLogEntry: Sendable {
    public var index: UInt64
    public var term: UInt64
    public var command: [UInt8]?
    public var configuration: [UInt8]?

    public init(index: UInt64, term: UInt64, command: [UInt8]?, configuration: [UInt8]? = nil) {
        self.index = index
        self.term = term
        self.command = command
        self.configuration = configuration
    }
}

/// An entry the machine will not apply (one a newer build wrote, say): the loop stops with it
/// as it is, nothing of its batch applied, and the node reports it in the machine's words.
public protocol MachineRefusal: Error, CustomStringConvertible {
    /// The entry, or the snapshot's last entry, refused.
    var index: UInt64 { get }
}

/// A snapshot that a machine took, as the loop finds, prunes and installs them.
public protocol SnapshotFiles: Sendable {
    /// Where the snapshots are, for messages.
    var directory: String { get }
    /// The complete snapshot at that position, if one is stored.
    func find(index: UInt64, term: UInt64) -> SnapshotInfo?
    /// Removes every snapshot but `keeping`.
    func prune(keeping: SnapshotInfo)
    /// Removes files of snapshots being received, but the one whose checksum is `except`.
    func removePartials(except: [UInt8]?)
}

/// What a stored snapshot holds: the log position of the projections it copies, their size
/// and checksum. Kept next to the copy as `info.json`, and sent ahead of the file when a
/// follower installs it.
public struct SnapshotInfo: Sendable, Equatable, Codable {
    public var index: UInt64
    public var term: UInt64
    /// The cluster configuration at `index`, encoded by the consensus layer (empty: the
    /// bootstrap configuration).
    public var configuration: [UInt8]
    public var size: UInt64
    public var sha256: [UInt8]

    public init(index: UInt64, term: UInt64, configuration: [UInt8], size: UInt64, sha256: [UInt8]) {
        self.index = index
        self.term = term
        self.configuration = configuration
        self.size = size
        self.sha256 = sha256
    }

    /// The directory name: zero-padded so names sort in log order.
    public var name: String {
        let digits = String(index)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "-" + String(term)
    }

    public var checksumHex: String {
        sha256.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }
}
