import Foundation
@testable import Projections

/// A chat state in a temporary directory, fed commands at consecutive log indexes the way the
/// node would after consensus.
final class Harness {
    let directory: String
    let state: ChatState
    private(set) var index: UInt64 = 0
    private var sequence: UInt64 = 0
    /// Added to every later entry's timestamp: moves the log's clock.
    var elapsedMs: Int64 = 0

    init(build: BuildVersions = .current) throws {
        directory = NSTemporaryDirectory() + "chorus-projections-" + UUID().uuidString
        state = try ChatState(directory: directory, build: build)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Applies `kind` as the next entry; returns the command's value or its rejection.
    @discardableResult
    func run(_ kind: Command.OneOf_Kind, client: String = "", sequence explicit: UInt64? = nil, firstOutstanding: UInt64 = 0) throws -> Result<UInt64, Rejection> {
        try runApplied(kind, client: client, sequence: explicit, firstOutstanding: firstOutstanding).outcome
    }

    func runApplied(_ kind: Command.OneOf_Kind, client: String = "", sequence explicit: UInt64? = nil,
                    firstOutstanding: UInt64 = 0, version: UInt32 = ChatState.commandVersion) throws -> Applied {
        index += 1
        sequence += 1
        var command = Command()
        command.version = version
        command.firstOutstanding = firstOutstanding
        command.clientID = client
        command.sequence = explicit ?? sequence
        command.timestampMs = 1_700_000_000_000 + Int64(index) + elapsedMs
        command.kind = kind
        return try #require(try state.apply(command, at: index))
    }

    func createAccount(_ name: String, password: String = "secret") throws -> Result<UInt64, Rejection> {
        var c = CreateAccount()
        c.name = name
        c.salt = Data("salt-\(name)".utf8)
        c.iterations = 2
        c.passwordHash = Data(Credentials.hashPassword(password, salt: Array(c.salt), iterations: 2)!)
        return try run(.createAccount(c))
    }

    /// Logs in and returns the token hash the later commands carry.
    func login(_ name: String, token: String? = nil, idleMs: Int64 = 0, lifetimeMs: Int64 = 0) throws -> Data {
        let hash = Data(Credentials.tokenHash(Array((token ?? "token-\(name)-\(index)").utf8)))
        var c = OpenSession()
        c.name = name
        c.tokenHash = hash
        c.idleMs = idleMs
        c.lifetimeMs = lifetimeMs
        _ = try run(.openSession(c)).get()
        return hash
    }

    func send(_ token: Data, to recipient: String, _ body: String) throws -> Result<UInt64, Rejection> {
        var c = SendMessage()
        c.tokenHash = token
        c.recipient = recipient
        c.body = body
        return try run(.sendMessage(c))
    }

    func acknowledge(_ token: Data, _ ids: [UInt64]) throws -> Result<UInt64, Rejection> {
        var c = AcknowledgeMessages()
        c.tokenHash = token
        c.messageIds = ids
        return try run(.acknowledge(c))
    }

    func delete(_ token: Data, _ ids: [UInt64]) throws -> Result<UInt64, Rejection> {
        var c = DeleteMessages()
        c.tokenHash = token
        c.messageIds = ids
        return try run(.deleteMessages(c))
    }

    func deleteAccount(_ token: Data) throws -> Result<UInt64, Rejection> {
        var c = DeleteAccount()
        c.tokenHash = token
        return try run(.deleteAccount(c))
    }

    func attach(_ token: Data, subscription: UInt64) throws -> Result<UInt64, Rejection> {
        var c = AttachClient()
        c.tokenHash = token
        c.subscriptionID = subscription
        return try run(.attach(c))
    }

    func userID(_ name: String) throws -> UInt64 {
        try #require(try state.user(named: name)).id
    }
}

extension Result where Failure == Rejection {
    var rejectionMessage: String? {
        if case let .failure(rejection) = self { return rejection.message }
        return nil
    }

    var rejection: Rejection.Code? {
        if case let .failure(r) = self { return r.code }
        return nil
    }
}

import Testing
