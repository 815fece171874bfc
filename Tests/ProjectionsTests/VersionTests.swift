import Foundation
import LMDB
import Testing
@testable import Projections

/// The log is forever: what a build does with entries it knows and with entries it does not.
@Suite struct VersionTests {
    /// Every way an entry can be beyond a build: each stops the batch with `UnknownEntry`
    /// naming the index, and nothing of the batch (not even the entries before it) is applied.
    @Test(arguments: [
        ("command version 3", try! Command.with { $0.version = 3; $0.kind = .detachAll(DetachAll()) }.serializedBytes(), "a command of version 3"),
        ("a kind from the future", VersionTests.withUnknownField(Command.with { $0.version = 2 }, field: 99), "a command of a kind this build does not know"),
        ("a field from the future", VersionTests.withUnknownField(Command.with { $0.version = 2; $0.kind = .detachAll(DetachAll()) }, field: 98),
         "a detach_all command with fields this build does not know"),
        ("a cluster version from the future", try! Command.with { $0.version = 2; $0.kind = .setClusterVersion(.with { $0.version = 4 }) }.serializedBytes(),
         "the cluster version 4"),
    ])
    func anEntryBeyondTheBuildStopsTheBatchAndChangesNothing(_ name: String, _ bytes: [UInt8], _ what: String) throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let before = try h.state.digest()
        let appliedBefore = try h.state.lastApplied()
        let detach = try Command.with { $0.version = 2; $0.kind = .detachAll(DetachAll()) }.serializedBytes() as [UInt8]
        let error = #expect(throws: UnknownEntry.self) {
            try h.state.apply([CommittedEntry(index: appliedBefore + 1, command: detach), CommittedEntry(index: appliedBefore + 2, command: bytes)])
        }
        #expect(error?.index == appliedBefore + 2)
        #expect(error?.what == what)
        #expect(error.map { "\($0)" }?.contains("cluster versions 1...3, command versions 1...2, entry kinds 0...1") == true)
        #expect(try h.state.lastApplied() == appliedBefore)
        #expect(try h.state.digest() == before)
    }

    /// A build one version older (the test switch of the node) stops at an edit instead of
    /// refusing it: a refusal would differ from what the newer builds apply.
    @Test func anOlderBuildStopsAtAKindFromANewerClusterVersion() throws {
        let h = try Harness(build: BuildVersions(maxClusterVersion: 1))
        _ = try h.createAccount("alice")
        let error = #expect(throws: UnknownEntry.self) {
            try h.run(.editMessage(.with { $0.messageID = 1; $0.body = "x" }))
        }
        #expect(error?.what == "a edit_message command, from cluster version 2")
        #expect(try h.state.lastApplied() == 1)
        // And it cannot follow the cluster to version 2.
        #expect(throws: UnknownEntry.self) { try h.run(.setClusterVersion(.with { $0.version = 2 })) }
    }

    /// What every build agrees on stays a refusal, worded as every release words it: an
    /// empty command, command version 0, bytes no build decodes.
    @Test func whatEveryBuildRefusesAlikeStaysARefusal() throws {
        let h = try Harness()
        let results = try h.state.apply([
            CommittedEntry(index: 1, command: try Command.with { $0.version = 2 }.serializedBytes()),
            CommittedEntry(index: 2, command: try Command.with { $0.version = 0; $0.kind = .detachAll(DetachAll()) }.serializedBytes()),
            CommittedEntry(index: 3, command: [0xFF, 0xFF, 0xFF]),
            CommittedEntry(index: 4, command: nil),
        ])
        #expect(results.map(\.outcome.rejection) == [.invalidArgument, .failedPrecondition, .invalidArgument, nil])
        #expect(results.map(\.outcome.rejectionMessage) == ["the command is empty", "command version 0 is not supported by this node (it knows 1...2)",
                                                             "entry 3 is not a chat command", nil])
        #expect(try h.state.lastApplied() == 4)
    }

    /// Editing exists from cluster version 2 on; before, the entry is refused with the
    /// sentence, the same on every build that knows it. The version only rises.
    @Test func editingNeedsClusterVersionTwoAndTheVersionOnlyRises() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice")
        let id = try h.send(alice, to: "bob", "helo").get()
        #expect(try h.state.clusterVersion() == 1)
        #expect(try h.edit(alice, id, "hello").rejectionMessage == "editing a message needs cluster version 2; the cluster runs 1 until every node is upgraded")
        #expect(try h.state.message(id: id)?.body == "helo")

        let raised = try h.runApplied(.setClusterVersion(.with { $0.version = 2 }))
        #expect(raised.events == [.clusterVersionRaised(2)])
        #expect(try h.state.clusterVersion() == 2)
        let again = try h.runApplied(.setClusterVersion(.with { $0.version = 1 }))
        #expect(again.events.isEmpty)
        #expect(try h.state.clusterVersion() == 2)

        let edited = try h.runApplied(.editMessage(.with { $0.tokenHash = alice; $0.messageID = id; $0.body = "hello" }))
        let row = try #require(try h.state.message(id: id))
        #expect(row.body == "hello")
        #expect(row.editedMs > 0)
        #expect(try edited.outcome.get() == UInt64(row.editedMs))
        #expect(edited.events == [.messageEdited(row)])
        // It keeps its id and its place, and stays undelivered.
        #expect(try h.state.undeliveredWithCount(userID: row.recipientID, limit: 10).messages.map(\.id) == [id])
    }

    @Test func onlyTheSenderEditsAnExistingMessageWithinTheLimits() throws {
        let h = try Harness()
        _ = try h.run(.setClusterVersion(.with { $0.version = 2 }))
        _ = try h.createAccount("alice")
        _ = try h.createAccount("bob")
        let alice = try h.login("alice")
        let bob = try h.login("bob")
        let id = try h.send(alice, to: "bob", "hi").get()
        #expect(try h.edit(bob, id, "forged").rejection == .permissionDenied)
        #expect(try h.edit(alice, id + 100, "x").rejection == .notFound)
        #expect(try h.edit(alice, id, "").rejection == .invalidArgument)
        #expect(try h.edit(alice, id, String(repeating: "x", count: Validation.maxBodyBytes + 1)).rejection == .invalidArgument)
        #expect(try h.edit(Data(repeating: 7, count: 32), id, "x").rejection == .unauthenticated)
        #expect(try h.state.message(id: id)?.body == "hi")
        _ = try h.delete(alice, [id]).get()
        #expect(try h.edit(alice, id, "x").rejection == .notFound)
    }

    /// The format version describes the file: stamped on projections that predate it, left
    /// out of the digest (replicas of different builds agree), and a newer one is refused.
    @Test func projectionsCarryAFormatVersion() throws {
        let h = try Harness()
        _ = try h.createAccount("alice")
        let digest = try h.state.digest()
        #expect(h.state.openedFormat == nil)
        let tables = h.state.tables
        let stored = try h.state.environment.read { txn in try txn.get(tables.meta, Tables.formatKey) }
        #expect(stored == FormatVersion.projections.bigEndianBytes)
        // Without the key (as a release before format versions wrote it), the same digest.
        try h.state.environment.write { txn in _ = try txn.delete(tables.meta, Tables.formatKey) }
        #expect(try h.state.digest() == digest)
        try h.state.environment.write { txn in try txn.put(tables.meta, Tables.formatKey, UInt32(2).bigEndianBytes) }
        let error = #expect(throws: NewerFormat.self) { _ = try ChatState(directory: h.directory) }
        #expect(error?.found == 2)
        #expect(error.map { "\($0)" }?.contains("has format version 2, newer than this build (release 0.4.0) reads (1)") == true)
        try h.state.environment.write { txn in try txn.put(tables.meta, Tables.formatKey, UInt32(1).bigEndianBytes) }
        #expect(try ChatState(directory: h.directory).openedFormat == 1)
    }

    static func withUnknownField(_ command: Command, field: Int) -> [UInt8] {
        // A varint field the build has no name for: tag (field << 3 | 0), value 1.
        try! command.serializedBytes() + [UInt8(field << 3 & 0x7F | 0x80), UInt8(field >> 4), 1]
    }
}

extension Harness {
    func edit(_ token: Data, _ id: UInt64, _ body: String) throws -> Result<UInt64, Rejection> {
        try run(.editMessage(.with { $0.tokenHash = token; $0.messageID = id; $0.body = body }))
    }
}
