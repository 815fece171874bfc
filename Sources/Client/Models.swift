import API

/// A chat message as the client sees it.
public struct ChatMessage: Sendable, Equatable, Hashable {
    /// The log index that stored it: unique, and increasing in send order.
    public var id: UInt64
    public var sender: String
    public var recipient: String
    public var body: String
    public var sentUnixMs: Int64
    public var delivered: Bool
    /// When the body was last edited; nil if never.
    public var editedUnixMs: Int64?
    /// In a group's conversation: the group's name as it is now (`recipient` is empty); for a
    /// change, the name it was made under.
    public var group: String?
    /// A change to the group instead of a message (`body` is empty; `sender` made it).
    public var change: GroupChange?

    init(_ m: Chorus_V1_ChatMessage) {
        id = m.id
        sender = m.sender
        recipient = m.recipient
        body = m.body
        sentUnixMs = m.sentUnixMs
        delivered = m.delivered
        editedUnixMs = m.editedUnixMs == 0 ? nil : m.editedUnixMs
        group = m.group.isEmpty ? nil : m.group
        change = m.hasChange ? GroupChange(m.change) : nil
    }
}

/// Who joined or left a group, its new name, a new admin: a line in its conversation.
public struct GroupChange: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable, Equatable, Hashable {
        case created, added, removed, left, renamed, madeAdmin, noLongerAdmin, unknown
    }

    public var kind: Kind
    /// Whom it concerns: those added or removed, the one made admin.
    public var members: [String]
    /// For a rename: the name before.
    public var previousName: String?
    /// For a leave: the account was deleted.
    public var accountDeleted: Bool
    /// For a leave: members who became admins because the last admin left.
    public var newAdmins: [String]

    init(_ c: Chorus_V1_GroupChange) {
        kind = switch c.kind {
        case .created: .created
        case .added: .added
        case .removed: .removed
        case .left: .left
        case .renamed: .renamed
        case .madeAdmin: .madeAdmin
        case .noLongerAdmin: .noLongerAdmin
        default: .unknown
        }
        members = c.members
        previousName = c.previousName.isEmpty ? nil : c.previousName
        accountDeleted = c.accountDeleted
        newAdmins = c.newAdmins
    }
}

/// One of the caller's groups.
public struct GroupSummary: Sendable, Equatable {
    public var name: String
    public var id: UInt64
    public var memberCount: UInt32
    /// The caller is an admin of it.
    public var admin: Bool
    /// The caller's undelivered messages in it.
    public var unreadCount: UInt64
}

/// A member of a group.
public struct GroupMember: Sendable, Equatable {
    public var name: String
    public var admin: Bool
    public var online: Bool
}

/// A request id the caller keeps across its own retries (a web page resending a message
/// whose outcome it never learned): the cluster applies a request at most once per id.
/// `firstOutstanding` is the lowest sequence of this client still awaiting its outcome.
public struct ChorusRequestID: Sendable, Equatable, Hashable {
    public var clientID: String
    public var sequence: UInt64
    public var firstOutstanding: UInt64

    public init(clientID: String, sequence: UInt64, firstOutstanding: UInt64) {
        self.clientID = clientID
        self.sequence = sequence
        self.firstOutstanding = firstOutstanding
    }

    var proto: Chorus_V1_RequestID {
        .with {
            $0.clientID = clientID
            $0.sequence = sequence
            $0.firstOutstanding = firstOutstanding
        }
    }
}

public struct Session: Sendable, Equatable {
    public var name: String
    public var token: String
    public var unreadCount: UInt64
}

public struct AccountPage: Sendable {
    public var accounts: [(name: String, online: Bool)]
    public var nextPageToken: String?
}

public struct HistoryPage: Sendable {
    public var messages: [ChatMessage]
    public var nextPageToken: String?
    /// The other side deleted its account: what it wrote stays, under the name it had.
    public var deletedAccount = false
}

/// A live event for a subscriber.
public enum ChatEvent: Sendable, Equatable {
    /// The stream is attached (on the current leader); `unreadCount` undelivered messages wait.
    case attached(unreadCount: UInt64)
    case message(ChatMessage)
    case messagesDeleted([UInt64])
    /// A message of one of the user's conversations has a new body: the message as it is now.
    case messageEdited(ChatMessage)
    /// A change to a group the user is in (or was removed from): a line for its conversation,
    /// nothing to acknowledge.
    case groupChanged(ChatMessage)
    case accountCreated(String)
    case accountDeleted(String)
    /// A user came online (its first live stream) or went offline (its last one ended).
    case presence(name: String, online: Bool)
    /// The stream broke (leader change); the library is reconnecting.
    case reconnecting(String)
}

/// One node's view of the cluster.
public struct NodeStatus: Sendable {
    public var endpoint: String
    public var nodeID: UInt64
    public var role: String
    public var term: UInt64
    public var leaderID: UInt64
    public var leaderAddress: String
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var lastIndex: UInt64
    public var members: [(id: UInt64, address: String, voter: Bool, matchIndex: UInt64)]
    public var clusterID: String
    /// Peer messages the node refused since it started; an honest cluster refuses none.
    public var refusedPeerMessages: UInt64
    /// Whether the node can serve now; if not, why (its `/readyz`).
    public var ready: Bool = true
    public var notReady: [String] = []
    /// The cluster version this node applied, what its build applies, and its release.
    public var clusterVersion: UInt32 = 1
    public var buildMaxClusterVersion: UInt32 = 1
    public var release: String = ""
    /// What each member's build applies and its release, as the member last said to this
    /// node (absent: not heard from since this node started).
    public var memberBuilds: [UInt64: (maxClusterVersion: UInt32, release: String)] = [:]
}
