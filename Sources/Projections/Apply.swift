import Foundation
import LMDB
import SwiftProtobuf

extension ChatState {
    /// The command format this build writes.
    public static let commandVersion: UInt32 = 2

    /// Applies committed entries in order, in one LMDB transaction that also records
    /// `lastApplied`. Entries at or below `lastApplied` are skipped (replaying is idempotent),
    /// and so have no `Applied` in the result.
    ///
    /// Deterministic: the result depends only on the current tables and the entries.
    public func apply(_ batch: [CommittedEntry]) throws -> [Applied] {
        try apply(batch, reporting: true)
    }

    /// Applies committed entries as `apply` does, without reporting their outcomes and
    /// events: a rebuild needs only the tables. An outcome per entry and a message copy per
    /// send are allocations that, freed on another thread, contend for malloc's arena lock.
    public func replay(_ batch: [CommittedEntry]) throws {
        _ = try apply(batch, reporting: false)
    }

    private func apply(_ batch: [CommittedEntry], reporting: Bool) throws -> [Applied] {
        try environment.write { txn in
            var applied: [Applied] = []
            var last = try tables.lastApplied(txn)
            var lastTerm: UInt64?
            let gathered = ApplyBatch()
            gathered.clock = try tables.clock(txn)
            gathered.clusterVersion = try tables.clusterVersion(txn)
            let clockBefore = gathered.clock
            let versionBefore = gathered.clusterVersion
            for entry in batch where entry.index > last {
                if let configuration = entry.configuration {
                    try txn.put(tables.meta, Tables.configurationKey, configuration)
                }
                if entry.command != nil {
                    let outcome = try applyCommand(&txn, entry, gathered, reporting: reporting)
                    if reporting { applied.append(outcome) }
                } else if reporting {
                    applied.append(Applied(index: entry.index, outcome: .success(0), events: [], duplicate: false))
                }
                last = entry.index
                lastTerm = entry.term
            }
            try gathered.finish(&txn, tables)
            if gathered.clusterVersion != versionBefore {
                try txn.put(tables.meta, Tables.clusterVersionKey, gathered.clusterVersion.bigEndianBytes)
            }
            if gathered.clock != clockBefore {
                try txn.put(tables.meta, Tables.clockKey, UInt64(bitPattern: gathered.clock).bigEndianBytes)
            }
            try txn.put(tables.meta, Tables.lastAppliedKey, last.bigEndianBytes)
            if let lastTerm {
                try txn.put(tables.meta, Tables.appliedTermKey, lastTerm.bigEndianBytes)
            }
            return applied
        }
    }

    /// Convenience for one command.
    public func apply(_ command: Command, at index: UInt64) throws -> Applied? {
        try apply([CommittedEntry(index: index, command: try command.serializedBytes())]).first
    }

    private func applyCommand(_ txn: inout Transaction, _ entry: CommittedEntry, _ gathered: ApplyBatch, reporting: Bool) throws -> Applied {
        let index = entry.index
        guard case let .command(command) = entry.decoded ?? CommittedEntry.decode(entry.command) else {
            // Bytes no build decodes: every release has refused them alike, and must. (A new
            // encoding would come as a new Raft entry kind, with a new log format.)
            return Applied(index: index, outcome: .failure(Rejection(.invalidArgument, "entry \(index) is not a chat command")), events: [], duplicate: false)
        }
        try checkKnown(command, at: index)
        // Exactly-once: a known (client, sequence) returns what it returned the first time.
        let clientKey = command.clientID
        guard clientKey.utf8.count <= Validation.maxClientIDBytes else {
            // No node proposes such an id; one in the log (a buggy or forged leader's) is
            // refused here rather than failing the batch on LMDB's key size limit.
            let refused = Rejection(.invalidArgument, "the client id of entry \(index) is longer than \(Validation.maxClientIDBytes) bytes")
            return Applied(index: index, outcome: .failure(refused), events: [], duplicate: false)
        }
        // A login is the one command a retry must apply again: each attempt carries a fresh
        // token that only its own entry can open, and the proposing leader checked the
        // password for it. The session of a lost answer is never used and expires.
        var remembered = !clientKey.isEmpty
        if case .openSession = command.kind, command.version >= 2 { remembered = false }
        let row = remembered ? try gathered.client(clientKey, in: txn, tables) : nil
        if remembered, case let .repeated(outcome) = try ExactlyOnce.admit(command, row: row, txn, tables) {
            return Applied(index: index, outcome: outcome, events: [], duplicate: true)
        }

        gathered.clock = max(gathered.clock, command.timestampMs)

        // Only sends may use what the batch read before them; anything else sees the tables as
        // they stand, and what it read goes with it.
        let isSend = if case .sendMessage = command.kind { true } else { false }
        if !isSend { try gathered.settle(&txn, tables) }
        defer { if !isSend { gathered.forgetReads() } }

        var events: [ChatEvent] = []
        let outcome: Result<UInt64, Rejection>
        do {
            guard BuildVersions.commandVersions.contains(command.version) else {
                // Only version 0 gets here (newer ones stopped the node in `checkKnown`): every
                // build has refused it the same way, so it stays a rejection.
                throw Rejection(.failedPrecondition, "command version \(command.version) is not supported by this node (it knows \(BuildVersions.commandVersions))")
            }
            if let kind = command.kind, BuildVersions.introduced(kind) > gathered.clusterVersion {
                throw Rejection.needsClusterVersion(BuildVersions.introduced(kind), for: kind, running: gathered.clusterVersion)
            }
            var mutation = Mutation(tables: tables, txn: txn, index: index, timestamp: command.timestampMs, clock: gathered.clock, gathered: gathered, reporting: reporting)
            outcome = .success(try mutation.perform(command.kind, events: &events))
        } catch let rejection as Rejection {
            events = []
            outcome = .failure(rejection)
        }

        if remembered {
            gathered.record(client: clientKey, try ExactlyOnce.record(command, index: index, outcome: Outcome(outcome), row: row, clock: gathered.clock, &txn, tables, gathered))
        }
        return Applied(index: index, outcome: outcome, events: events, duplicate: false)
    }
}

extension ChatState {
    /// Throws `UnknownEntry` for a command this build cannot apply exactly as a build that
    /// knows it would: a newer command version, a kind from a newer cluster version, a field
    /// it does not know anywhere in the command, or a cluster version beyond its own.
    func checkKnown(_ command: Command, at index: UInt64) throws {
        if command.version > BuildVersions.commandVersions.upperBound {
            throw UnknownEntry(index: index, what: "a command of version \(command.version)", build: build)
        }
        guard let kind = command.kind else {
            if !command.unknownFields.data.isEmpty {
                throw UnknownEntry(index: index, what: "a command of a kind this build does not know", build: build)
            }
            return  // An empty command: every build refuses it alike.
        }
        if !build.knows(kind) {
            throw UnknownEntry(index: index, what: "a \(kind.name) command, from cluster version \(BuildVersions.introduced(kind))", build: build)
        }
        if !command.unknownFields.data.isEmpty || kind.hasUnknownFields {
            throw UnknownEntry(index: index, what: "a \(kind.name) command with fields this build does not know", build: build)
        }
        if case let .setClusterVersion(raise) = kind, raise.version > build.maxClusterVersion {
            throw UnknownEntry(index: index, what: "the cluster version \(raise.version)", build: build)
        }
    }
}

extension Command.OneOf_Kind {
    /// For people: what a command of this kind does.
    var name: String {
        switch self {
        case .createAccount: "create_account"
        case .openSession: "open_session"
        case .closeSession: "close_session"
        case .sendMessage: "send_message"
        case .acknowledge: "acknowledge"
        case .deleteMessages: "delete_messages"
        case .deleteAccount: "delete_account"
        case .attach: "attach"
        case .detach: "detach"
        case .detachAll: "detach_all"
        case .setClusterVersion: "set_cluster_version"
        case .editMessage: "edit_message"
        case .createGroup: "create_group"
        case .addGroupMembers: "add_group_members"
        case .removeGroupMembers: "remove_group_members"
        case .leaveGroup: "leave_group"
        case .renameGroup: "rename_group"
        case .setGroupAdmin: "set_group_admin"
        case .sendGroupMessage: "send_group_message"
        }
    }

    /// What a refusal calls the feature.
    var feature: String {
        switch self {
        case .editMessage: "editing a message"
        case .createGroup, .addGroupMembers, .removeGroupMembers, .leaveGroup, .renameGroup, .setGroupAdmin, .sendGroupMessage: Rejection.groupsFeature
        default: "a \(name) command"
        }
    }

    var hasUnknownFields: Bool {
        switch self {
        case let .createAccount(c): !c.unknownFields.data.isEmpty
        case let .openSession(c): !c.unknownFields.data.isEmpty
        case let .closeSession(c): !c.unknownFields.data.isEmpty
        case let .sendMessage(c): !c.unknownFields.data.isEmpty
        case let .acknowledge(c): !c.unknownFields.data.isEmpty
        case let .deleteMessages(c): !c.unknownFields.data.isEmpty
        case let .deleteAccount(c): !c.unknownFields.data.isEmpty
        case let .attach(c): !c.unknownFields.data.isEmpty
        case let .detach(c): !c.unknownFields.data.isEmpty
        case let .detachAll(c): !c.unknownFields.data.isEmpty
        case let .setClusterVersion(c): !c.unknownFields.data.isEmpty
        case let .editMessage(c): !c.unknownFields.data.isEmpty
        case let .createGroup(c): !c.unknownFields.data.isEmpty
        case let .addGroupMembers(c): !c.unknownFields.data.isEmpty
        case let .removeGroupMembers(c): !c.unknownFields.data.isEmpty
        case let .leaveGroup(c): !c.unknownFields.data.isEmpty
        case let .renameGroup(c): !c.unknownFields.data.isEmpty
        case let .setGroupAdmin(c): !c.unknownFields.data.isEmpty
        case let .sendGroupMessage(c): !c.unknownFields.data.isEmpty
        }
    }
}

extension Rejection {
    /// What a refusal of a group command before cluster version 3 calls it.
    public static let groupsFeature = "using groups"

    /// A request for something the committed cluster version does not have yet.
    public static func needsClusterVersion(_ needed: UInt32, for kind: Command.OneOf_Kind, running: UInt32) -> Rejection {
        needsClusterVersion(needed, feature: kind.feature, running: running)
    }

    /// The sentence is part of what the log means (it is recorded as the request's outcome):
    /// never reword it.
    public static func needsClusterVersion(_ needed: UInt32, feature: String, running: UInt32) -> Rejection {
        Rejection(.failedPrecondition, "\(feature) needs cluster version \(needed); the cluster runs \(running) until every node is upgraded")
    }
}

extension Outcome {
    init(_ result: Result<UInt64, Rejection>) {
        self.init()
        switch result {
        case let .success(value):
            self.value = value
        case let .failure(rejection):
            self.rejection = rejection.code.rawValue
            self.detail = rejection.message
        }
    }

    var result: Result<UInt64, Rejection> {
        if rejection == 0 { return .success(value) }
        return .failure(Rejection(Rejection.Code(rawValue: rejection) ?? .failedPrecondition, detail))
    }
}

/// One command's changes. Every handler checks everything first and writes after, so a
/// rejected command leaves no trace but its `clients` row.
struct Mutation {
    let tables: Tables
    var txn: Transaction
    let index: UInt64
    let timestamp: Int64
    /// The log's clock at this entry (see `SessionLifetime`).
    let clock: Int64
    let gathered: ApplyBatch
    /// Whether events are wanted. Only sends skip theirs when not: the other commands are rare.
    let reporting: Bool
    /// Sessions this command removed: announced, so that their streams end.
    var endedSessions: [[UInt8]] = []

    /// Runs one command. A `Rejection` is the command's outcome, recorded like a success; any
    /// other error is the storage failing, which is not the client's doing and must not become
    /// an outcome (this replica would then differ from the others): it aborts the whole batch,
    /// and the node stops rather than diverge.
    mutating func perform(_ kind: Command.OneOf_Kind?, events: inout [ChatEvent]) throws -> UInt64 {
        let value = try run(kind, events: &events)
        if !endedSessions.isEmpty { events.append(.sessionsEnded(tokenHashes: endedSessions)) }
        return value
    }

    private mutating func run(_ kind: Command.OneOf_Kind?, events: inout [ChatEvent]) throws -> UInt64 {
        switch kind {
        case let .createAccount(c): return try createAccount(c, &events)
        case let .openSession(c): return try openSession(c)
        case let .closeSession(c): return try closeSession(c)
        case let .sendMessage(c): return try sendMessage(c, &events)
        case let .acknowledge(c): return try acknowledge(c)
        case let .deleteMessages(c): return try deleteMessages(c, &events)
        case let .deleteAccount(c): return try deleteAccount(c, &events)
        case let .attach(c): return try attach(c, &events)
        case let .detach(c): return try detach(c.subscriptionID, &events)
        case .detachAll: return try detachAll(&events)
        case let .setClusterVersion(c): return setClusterVersion(c, &events)
        case let .editMessage(c): return try editMessage(c, &events)
        case let .createGroup(c): return try createGroup(c, &events)
        case let .addGroupMembers(c): return try addGroupMembers(c, &events)
        case let .removeGroupMembers(c): return try removeGroupMembers(c, &events)
        case let .leaveGroup(c): return try leaveGroup(c, &events)
        case let .renameGroup(c): return try renameGroup(c, &events)
        case let .setGroupAdmin(c): return try setGroupAdmin(c, &events)
        case let .sendGroupMessage(c): return try sendGroupMessage(c, &events)
        case nil: throw Rejection(.invalidArgument, "the command is empty")
        }
    }

    // MARK: Accounts

    mutating func createAccount(_ c: CreateAccount, _ events: inout [ChatEvent]) throws -> UInt64 {
        try Validation.accountName(c.name)
        guard !c.passwordHash.isEmpty, !c.salt.isEmpty, c.iterations > 0, c.iterations <= Validation.maxPasswordIterations else {
            throw Rejection(.invalidArgument, "the account has no password hash")
        }
        let key = Array(c.name.utf8)
        guard try txn.get(tables.users, key) == nil else {
            throw Rejection(.alreadyExists, "the name '\(c.name)' is taken")
        }
        var user = UserRow()
        user.id = index
        user.name = c.name
        user.passwordHash = c.passwordHash
        user.salt = c.salt
        user.iterations = c.iterations
        user.createdMs = timestamp
        try txn.put(tables.users, key, try user.serializedBytes())
        events.append(.accountCreated(name: c.name))
        return index
    }

    mutating func deleteAccount(_ c: DeleteAccount, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        // It leaves its groups, as members are told; what it sent there stays.
        try leaveEveryGroup(user, &events)
        // Its inbox, read or not, goes; what it sent stays with the recipients.
        var received: [UInt64] = []
        try txn.withCursor(tables.mailbox) { cursor in
            try cursor.forEach(prefix: user.id.bigEndianBytes) { row in
                if let id = UInt64(bigEndianBytes: row.key, at: 8) { received.append(id) }
                return true
            }
        }
        for id in received {
            if let message = try message(id) { try removeMessage(message) }
        }
        for hash in try removeRows(tables.userSessions, prefix: user.id.bigEndianBytes, { key in Array(key.dropFirst(8)) }) {
            try removeSession(hash)
        }
        try removeRows(tables.online, prefix: user.id.bigEndianBytes) { key in Array(key.dropFirst(8)) }
            .forEach { try txn.delete(tables.subscriptions, $0) }
        try txn.delete(tables.users, Array(user.name.utf8))
        // From cluster version 3 on, the name it had is remembered with its id: those it wrote
        // to still read what it said under that name (a new apply of the command, hence the
        // version).
        if gathered.clusterVersion >= 3, let former = tables.formerUsers {
            try txn.put(former, Tables.formerUserKey(user.name, user.id), [])
        }
        events.append(.accountDeleted(name: user.name))
        return UInt64(received.count)
    }

    // MARK: Sessions

    mutating func openSession(_ c: OpenSession) throws -> UInt64 {
        try Validation.accountName(c.name)
        guard let user = try user(named: c.name) else {
            throw Rejection(.notFound, "there is no account named '\(c.name)'")
        }
        guard c.tokenHash.count == Validation.tokenHashLength else {
            throw Rejection(.invalidArgument, "the session token hash must be \(Validation.tokenHashLength) bytes")
        }
        guard try txn.get(tables.sessions, Array(c.tokenHash)) == nil else {
            throw Rejection(.alreadyExists, "the session token is already in use")
        }
        try removeEndedSessions(limit: 16)
        try closeOldestSessions(of: user, keeping: Validation.maxSessionsPerUser - 1)
        var row = SessionRow()
        row.userID = user.id
        row.name = user.name
        row.createdMs = timestamp
        row.lastUsedMs = clock
        row.idleMs = max(0, c.idleMs)
        row.expiresMs = c.lifetimeMs > 0 ? clock.addingReportingOverflow(c.lifetimeMs).partialValue : 0
        if row.expiresMs < 0 { row.expiresMs = .max }
        try putSession(row, Array(c.tokenHash), replacing: nil)
        try txn.put(tables.userSessions, user.id.bigEndianBytes + Array(c.tokenHash), [])
        return try countRows(tables.inbox, prefix: user.id.bigEndianBytes)
    }

    /// Ends the user's oldest sessions until `keeping` remain: logins (each retry opens its
    /// own) cannot grow the sessions table without bound.
    mutating func closeOldestSessions(of user: Account, keeping: Int) throws {
        let prefix = user.id.bigEndianBytes
        var open: [(createdMs: Int64, hash: [UInt8])] = []
        try txn.withCursor(tables.userSessions) { cursor in
            try cursor.forEach(prefix: prefix) { row in
                let hash = Array(row.key.dropFirst(prefix.count))
                let created = try txn.get(tables.sessions, hash).map { try SessionRow(serializedBytes: $0).createdMs } ?? 0
                open.append((created, hash))
                return true
            }
        }
        guard open.count > keeping else { return }
        open.sort { a, b in a.createdMs != b.createdMs ? a.createdMs < b.createdMs : a.hash.lexicographicallyPrecedes(b.hash) }
        for session in open.prefix(open.count - keeping) { try removeSession(session.hash) }
    }

    /// Removes up to `limit` sessions that have ended by the log's clock, oldest deadline
    /// first.
    mutating func removeEndedSessions(limit: Int) throws {
        var ended: [[UInt8]] = []
        let clock = self.clock
        try txn.withCursor(tables.sessionDeadlines) { cursor in
            var row = try cursor.first()
            while let current = row, ended.count < limit,
                  let deadline = UInt64(bigEndianBytes: current.key), Int64(bitPattern: deadline) <= clock {
                ended.append(Array(current.key.dropFirst(8)))
                row = try cursor.next()
            }
        }
        for hash in ended { try removeSession(hash) }
    }

    /// Removes a session and its index rows.
    mutating func removeSession(_ hash: [UInt8]) throws {
        guard let bytes = try txn.get(tables.sessions, hash) else { return }
        let row = try SessionRow(serializedBytes: bytes)
        _ = try txn.delete(tables.sessions, hash)
        endedSessions.append(hash)
        _ = try txn.delete(tables.userSessions, row.userID.bigEndianBytes + hash)
        if let deadline = row.deadline { _ = try txn.delete(tables.sessionDeadlines, SessionRow.deadlineKey(deadline, hash)) }
    }

    /// Writes a session row and moves its deadline in the index.
    mutating func putSession(_ row: SessionRow, _ hash: [UInt8], replacing old: SessionRow?) throws {
        if let deadline = old?.deadline { _ = try txn.delete(tables.sessionDeadlines, SessionRow.deadlineKey(deadline, hash)) }
        try txn.put(tables.sessions, hash, try row.serializedBytes())
        if let deadline = row.deadline { try txn.put(tables.sessionDeadlines, SessionRow.deadlineKey(deadline, hash), []) }
    }

    mutating func closeSession(_ c: CloseSession) throws -> UInt64 {
        _ = try session(c.tokenHash)
        try removeSession(Array(c.tokenHash))
        return 0
    }

    // MARK: Messages

    mutating func sendMessage(_ c: SendMessage, _ events: inout [ChatEvent]) throws -> UInt64 {
        let sender = try session(c.tokenHash)
        try Validation.accountName(c.recipient)
        try Validation.messageBody(c.body)
        guard let recipient = try user(named: c.recipient) else {
            throw Rejection(.notFound, "there is no account named '\(c.recipient)'")
        }
        var message = MessageRow()
        message.id = index
        message.senderID = sender.id
        message.sender = sender.name
        message.recipientID = recipient.id
        message.recipient = recipient.name
        message.body = c.body
        message.sentMs = timestamp
        gathered.addSend(message.storageBytes(), recipient: recipient.id, sender: sender.id, id: index)
        if reporting { events.append(.messageSent(message)) }
        return index
    }

    mutating func acknowledge(_ c: AcknowledgeMessages) throws -> UInt64 {
        let user = try session(c.tokenHash)
        var pending: [MessageRow] = []
        var pendingInGroups: [UInt64] = []
        for id in Set(c.messageIds).sorted() {
            // A message deleted since it was pushed needs no acknowledgement.
            guard let message = try message(id) else { continue }
            if message.groupID != 0 {
                // Delivered to this member once its delivery row goes. Without one (a change,
                // its own message, one from before it joined or after it left) there is
                // nothing to acknowledge.
                if try txn.get(tables.inbox, compositeKey(user.id, id)) != nil { pendingInGroups.append(id) }
                continue
            }
            guard message.recipientID == user.id else {
                throw Rejection(.permissionDenied, "message \(id) was not sent to \(user.name)")
            }
            if !message.delivered { pending.append(message) }
        }
        for var message in pending {
            message.delivered = true
            try txn.put(tables.messages, message.id.bigEndianBytes, try message.serializedBytes())
            try txn.delete(tables.inbox, compositeKey(user.id, message.id))
        }
        for id in pendingInGroups { try txn.delete(tables.inbox, compositeKey(user.id, id)) }
        return UInt64(pending.count + pendingInGroups.count)
    }

    mutating func deleteMessages(_ c: DeleteMessages, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        guard !c.messageIds.isEmpty else { throw Rejection(.invalidArgument, "no message ids to delete") }
        var doomed: [MessageRow] = []
        for id in Set(c.messageIds).sorted() {
            guard let message = try message(id) else {
                throw Rejection(.notFound, "there is no message \(id)")
            }
            if message.groupID != 0 {
                switch try mayDeleteGroupMessage(message, user) {
                case nil: throw Rejection(.permissionDenied, "message \(id) is not in a conversation of \(user.name)")
                case false?: throw Rejection(.permissionDenied, "message \(id) is not \(user.name)'s to delete: in a group, a member deletes its own messages, an admin any")
                case true?: break
                }
            } else {
                guard message.senderID == user.id || message.recipientID == user.id else {
                    throw Rejection(.permissionDenied, "message \(id) is not in a conversation of \(user.name)")
                }
            }
            doomed.append(message)
        }
        var participants = Set<String>()
        for message in doomed {
            if message.groupID != 0 {
                participants.formUnion(try removeGroupMessage(message))
                continue
            }
            try removeMessage(message)
            participants.insert(message.sender)
            participants.insert(message.recipient)
        }
        events.append(.messagesDeleted(ids: doomed.map(\.id), participants: participants.sorted()))
        return UInt64(doomed.count)
    }

    /// The version only rises: a repeated or stale proposal changes nothing. (`checkKnown`
    /// stopped a build that does not apply it.)
    func setClusterVersion(_ c: SetClusterVersion, _ events: inout [ChatEvent]) -> UInt64 {
        if c.version > gathered.clusterVersion {
            gathered.clusterVersion = c.version
            events.append(.clusterVersionRaised(c.version))
        }
        return UInt64(gathered.clusterVersion)
    }

    /// The sender replaces the body; the message keeps its id, its place and its delivery.
    mutating func editMessage(_ c: EditMessage, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        try Validation.messageBody(c.body)
        guard var message = try message(c.messageID) else {
            throw Rejection(.notFound, "there is no message \(c.messageID)")
        }
        guard message.senderID == user.id else {
            throw Rejection(.permissionDenied, "message \(c.messageID) was not sent by \(user.name): only its sender edits it")
        }
        if message.groupID != 0, try memberRow(message.groupID, user.id) == nil {
            throw Rejection(.permissionDenied, "message \(c.messageID) is in a group \(user.name) is no longer in")
        }
        message.body = c.body
        message.editedMs = max(timestamp, 1)
        try txn.put(tables.messages, message.id.bigEndianBytes, try message.serializedBytes())
        if message.groupID != 0 {
            events.append(.groupMessageEdited(try withCurrentName(message), audience: try audience(of: message)))
        } else {
            events.append(.messageEdited(message))
        }
        return UInt64(bitPattern: message.editedMs)
    }

    // MARK: Online clients

    /// A user's first stream brings it online and its last one takes it offline; only those
    /// transitions are announced, so a second tab says nothing.
    mutating func attach(_ c: AttachClient, _ events: inout [ChatEvent]) throws -> UInt64 {
        let user = try session(c.tokenHash)
        guard c.subscriptionID != 0 else { throw Rejection(.invalidArgument, "subscription id 0 is reserved") }
        var ignored: [ChatEvent] = []
        _ = try detach(c.subscriptionID, &ignored)
        let wasOnline = try tables.isOnline(user.id, txn)
        var row = SubscriptionRow()
        row.userID = user.id
        row.name = user.name
        try txn.put(tables.subscriptions, c.subscriptionID.bigEndianBytes, try row.serializedBytes())
        try txn.put(tables.online, compositeKey(user.id, c.subscriptionID), [])
        if !wasOnline { events.append(.presence(name: user.name, online: true)) }
        return c.subscriptionID
    }

    mutating func detach(_ subscription: UInt64, _ events: inout [ChatEvent]) throws -> UInt64 {
        guard let bytes = try txn.get(tables.subscriptions, subscription.bigEndianBytes) else { return 0 }
        let row = try SubscriptionRow(serializedBytes: bytes)
        try txn.delete(tables.subscriptions, subscription.bigEndianBytes)
        try txn.delete(tables.online, compositeKey(row.userID, subscription))
        if try !tables.isOnline(row.userID, txn) { events.append(.presence(name: row.name, online: false)) }
        return 1
    }

    /// Everyone goes offline, and is announced so: a client gone for good during the
    /// failover must not stay online in the eyes of those who watch it.
    mutating func detachAll(_ events: inout [ChatEvent]) throws -> UInt64 {
        var online: [UInt64: String] = [:]
        try txn.withCursor(tables.subscriptions) { cursor in
            var row = try cursor.first()
            while let current = row {
                let subscription = try SubscriptionRow(serializedBytes: current.value)
                online[subscription.userID] = subscription.name
                row = try cursor.next()
            }
        }
        for (_, name) in online.sorted(by: { $0.key < $1.key }) { events.append(.presence(name: name, online: false)) }
        let count = try txn.count(tables.subscriptions)
        try txn.clear(tables.subscriptions)
        try txn.clear(tables.online)
        return UInt64(count)
    }

    // MARK: Helpers

    func user(named name: String) throws -> Account? {
        if let known = gathered.user(named: name) { return known }
        guard let row = try txn.get(tables.users, Array(name.utf8)).map({ try UserRow(serializedBytes: $0) }) else { return nil }
        let user = Account(id: row.id, name: row.name)
        gathered.remember(user: user)
        return user
    }

    func message(_ id: UInt64) throws -> MessageRow? {
        try txn.get(tables.messages, id.bigEndianBytes).map { try MessageRow(serializedBytes: $0) }
    }

    /// The session for a token hash and its (still existing) user; the only way a command
    /// learns who is acting. A session that has ended by the log's clock is refused; one not
    /// used for `touchInterval` is marked used now (even if the command is then refused: the
    /// rule is the same on every replica).
    mutating func session(_ tokenHash: Data) throws -> Account {
        var (user, row): (Account, SessionRow)
        var changed: Bool
        if let known = gathered.session(for: tokenHash) {
            (user, row) = known
            changed = false
        } else {
            try Validation.tokenHash(Array(tokenHash))
            guard let bytes = try txn.get(tables.sessions, Array(tokenHash)) else { throw Rejection.noSession }
            row = try SessionRow(serializedBytes: bytes)
            guard let found = try self.user(named: row.name), found.id == row.userID else { throw Rejection.noSession }
            user = found
            changed = true
        }
        guard !row.hasEnded(at: clock) else { throw Rejection.sessionEnded }
        if row.idleMs > 0 && clock - row.lastUsedMs >= SessionRow.touchInterval {
            let old = row
            row.lastUsedMs = clock
            try putSession(row, Array(tokenHash), replacing: old)
            changed = true
        }
        // Most sends find their session in the batch as it was: nothing to store again.
        if changed { gathered.remember(session: user, row, for: tokenHash) }
        return user
    }

    mutating func removeMessage(_ message: MessageRow) throws {
        try txn.delete(tables.messages, message.id.bigEndianBytes)
        try txn.delete(tables.inbox, compositeKey(message.recipientID, message.id))
        try txn.delete(tables.mailbox, compositeKey(message.recipientID, message.id))
        try txn.delete(tables.conversations, conversationKey(message.senderID, message.recipientID, message.id))
    }

    /// Deletes every row under `prefix` and returns `transform` of each deleted key.
    mutating func removeRows(_ database: Database, prefix: [UInt8], _ transform: ([UInt8]) -> [UInt8]) throws -> [[UInt8]] {
        var removed: [[UInt8]] = []
        try txn.withCursor(database) { cursor in
            var row = try cursor.seek(atOrAfter: prefix)
            while let current = row, current.key.starts(with: prefix) {
                removed.append(transform(current.key))
                try cursor.deleteCurrent()
                row = try cursor.seek(atOrAfter: prefix)
            }
        }
        return removed
    }

    func countRows(_ database: Database, prefix: [UInt8]) throws -> UInt64 {
        try txn.withCursor(database) { cursor in
            var count: UInt64 = 0
            try cursor.forEach(prefix: prefix) { _ in count += 1; return true }
            return count
        }
    }
}

/// The `conversations` key of message `id` between users `a` and `b` (see
/// `IndexKey.conversation`).
func conversationKey(_ a: UInt64, _ b: UInt64, _ id: UInt64) -> [UInt8] {
    IndexKey.conversation(a, b, id).withBytes { Array($0) }
}
