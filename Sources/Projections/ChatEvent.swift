import Replica

/// What subscribers are told when a command takes effect.
public enum ChatEvent: Sendable, Equatable {
    /// A new message, for its recipient (and the sender's other sessions).
    case messageSent(MessageRow)
    /// Messages removed; `participants` are the names on either side of them.
    case messagesDeleted(ids: [UInt64], participants: [String])
    /// A message's new body, for both sides of its conversation.
    case messageEdited(MessageRow)
    /// A group message, for every member but its sender (`audience`, by user id).
    case groupMessageSent(MessageRow, audience: [UInt64])
    /// A change to a group: for its members, and those it removed.
    case groupChanged(MessageRow, audience: [UInt64])
    /// A group message's new body, for the group's members.
    case groupMessageEdited(MessageRow, audience: [UInt64])
    case accountCreated(name: String)
    case accountDeleted(name: String)
    /// A user's first live stream attached (online) or its last one ended (offline),
    /// including every user a new leader's `detachAll` takes offline.
    case presence(name: String, online: Bool)
    /// Sessions that ended (logout, a newer login over the limit, expiry swept at a login,
    /// the account deleted), by token hash: their live streams end with them. Not shown to
    /// any client.
    case sessionsEnded(tokenHashes: [[UInt8]])
    /// The cluster version rose to this (`SetClusterVersion`). Not shown to any client.
    case clusterVersionRaised(UInt32)
}

/// The effect of one committed log entry.
public struct Applied: Sendable {
    /// The log index of the entry.
    public let index: UInt64
    /// The command's value (message id for a send, unread count for a login, count of
    /// affected messages for deletes and acknowledgements) or why it was refused.
    public let outcome: Result<UInt64, Rejection>
    public let events: [ChatEvent]
    /// The entry repeated a client id and sequence already applied; `outcome` is the
    /// original one and nothing changed.
    public let duplicate: Bool

    public init(index: UInt64, outcome: Result<UInt64, Rejection>, events: [ChatEvent], duplicate: Bool) {
        self.index = index
        self.outcome = outcome
        self.events = events
        self.duplicate = duplicate
    }
}

/// An entry handed to `ChatState.apply`: its index and term and, for a chat command, its
/// encoded bytes (nil for entries that carry no command, such as a new leader's no-op).
///
/// `configuration` carries a membership entry's bytes, opaque here: the tables remember the
/// latest, so a snapshot of them says which cluster it belongs to.
public struct CommittedEntry: Sendable {
    public var index: UInt64
    public var term: UInt64
    public var command: [UInt8]?
    public var configuration: [UInt8]?

    /// `command` decoded ahead of `apply` by `decode()`: replay decodes on one thread while
    /// another applies.
    var decoded: Decoded?

    enum Decoded: Sendable {
        case command(Command)
        case invalid
    }

    /// The entry as the replica loop hands it over.
    public init(_ entry: CommittedLogEntry) {
        self.init(index: entry.index, term: entry.term, command: entry.command, configuration: entry.configuration)
    }

    public init(index: UInt64, term: UInt64 = 0, command: [UInt8]?, configuration: [UInt8]? = nil) {
        self.index = index
        self.term = term
        self.command = command
        self.configuration = configuration
    }

    /// Decodes the command now, so `apply` does not have to.
    public mutating func decode() {
        decoded = Self.decode(command)
    }

    static func decode(_ bytes: [UInt8]?) -> Decoded? {
        guard let bytes else { return nil }
        return (try? Command(serializedBytes: bytes)).map(Decoded.command) ?? .invalid
    }
}
