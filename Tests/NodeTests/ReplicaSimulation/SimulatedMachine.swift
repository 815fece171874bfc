import Foundation
import Logging
import Projections
import Raft
@testable import Node
@testable import Replica

/// A state machine the replica simulation runs: how a (re)starting node opens it, what its
/// clients send, and what the checker compares across replicas.
protocol SimulatedMachine: StateMachine where Snapshots == SnapshotStore {
    /// The machine of a node starting on `directory`, as the node opens it: from what the
    /// directory holds, or from the snapshot the log records when the log cannot bring it up
    /// to date (`logStart`: the last index the log discarded), or rebuilt from that snapshot
    /// after a power loss.
    static func open(directory: String, logStart: Index, recorded: SnapshotMetadata, snapshots: SnapshotStore, afterPowerLoss: Bool) throws -> Self

    /// Commands every run proposes before its faults, each until it is applied.
    static var setup: [[UInt8]] { get }

    /// The client's `n`th command (n from 1), and its name.
    static func command(_ n: Int) -> (name: String, bytes: [UInt8])

    /// Whether a client may send a command again after an unknown outcome (the machine
    /// applies a repeat once).
    static var retriesAreSafe: Bool { get }

    /// How the successful output of the command named `name` shows in `transcript()`; nil
    /// for a refusal.
    static func receipt(_ output: Output, name: String) -> String?

    /// The output a planted bug acknowledges a command with once appended, before it commits.
    static func acknowledgedOnAppend(_ command: [UInt8], at index: Index) -> Output?

    /// What every replica must agree on: one line per command applied ("id:name", checked for
    /// repeats by name), and any lines summing up the rest of the state.
    func transcript() throws -> [String]
}

extension ReplicaLoopTests.Ledger: SimulatedMachine {
    /// In memory: it starts empty, or from the snapshot the log records.
    static func open(directory: String, logStart: Index, recorded: SnapshotMetadata, snapshots: SnapshotStore, afterPowerLoss: Bool) throws -> Self {
        let machine = Self()
        guard recorded.index > 0 else { return machine }
        guard let info = snapshots.find(index: recorded.index, term: recorded.term) else {
            throw SnapshotError.missing(index: recorded.index, term: recorded.term, directory: snapshots.directory)
        }
        try machine.install(info, from: snapshots)
        return machine
    }

    static var setup: [[UInt8]] { [] }
    static func command(_ n: Int) -> (name: String, bytes: [UInt8]) { ("c\(n)", Array("c\(n)".utf8)) }
    /// The ledger records whatever it is given: a repeat is applied twice.
    static var retriesAreSafe: Bool { false }
    static func receipt(_ output: String, name: String) -> String? { output }

    static func acknowledgedOnAppend(_ command: [UInt8], at index: Index) -> String? {
        "\(index):\(String(decoding: command, as: UTF8.self))"
    }

    func transcript() throws -> [String] {
        applied.filter { $0.command != Self.leaderCommand }.map { "\($0.index):\($0.command)" }
    }
}

extension ChatMachine: SimulatedMachine {
    /// The node's own projections in `directory/state` (LMDB), as `DataDirectory` opens them:
    /// as found, or rebuilt from the log's snapshot after a power loss.
    static func open(directory: String, logStart: Index, recorded: SnapshotMetadata, snapshots: SnapshotStore, afterPowerLoss: Bool) throws -> Self {
        let stateDirectory = StateDirectory(directory: directory + "/state")
        let state = afterPowerLoss ? try stateDirectory.rebuild(snapshot: (recorded.index, recorded.term), snapshots: snapshots)
            : try stateDirectory.open(logStart: logStart, snapshot: (recorded.index, recorded.term), snapshots: snapshots)
        let logger = Logger(label: "chat") { _ in SwiftLogNoOpLogHandler() }
        return Self(current: CurrentState(state), stateDirectory: stateDirectory, dataDirectory: directory, subscriptionLimits: EventHub.Limits(),
                    versions: PeerVersions(build: state.build, clusterVersion: try state.clusterVersion()), logger: logger)
    }

    /// Two accounts and a session each: the sends go between them.
    static var setup: [[UInt8]] {
        ["alice", "bob"].flatMap { (name: String) -> [[UInt8]] in
            var create = Command()
            create.version = ChatState.commandVersion
            create.kind = .createAccount(.with {
                $0.name = name
                $0.passwordHash = Data(repeating: 7, count: 32)
                $0.salt = Data(repeating: 1, count: 16)
                $0.iterations = 1
            })
            var open = Command()
            open.version = ChatState.commandVersion
            open.kind = .openSession(.with {
                $0.name = name
                $0.tokenHash = Data(token(name))
            })
            return [create, open].map { command in try! command.serializedBytes() as [UInt8] }
        }
    }

    static func token(_ name: String) -> [UInt8] { Array(repeating: name == "alice" ? 0xA1 : 0xB0, count: 32) }

    /// A send from alice to bob or back, under one client id with its own sequence: a retry
    /// carries the same one.
    static func command(_ n: Int) -> (name: String, bytes: [UInt8]) {
        let (from, to) = n % 2 == 0 ? ("alice", "bob") : ("bob", "alice")
        var command = Command()
        command.version = ChatState.commandVersion
        command.clientID = "simulated-client"
        command.sequence = UInt64(n)
        command.timestampMs = 1_700_000_000_000 + Int64(n)
        command.kind = .sendMessage(.with {
            $0.tokenHash = Data(token(from))
            $0.recipient = to
            $0.body = "m\(n)"
        })
        return ("m\(n)", try! command.serializedBytes() as [UInt8])
    }

    static var retriesAreSafe: Bool { true }

    static func receipt(_ output: Applied, name: String) -> String? {
        guard case let .success(id) = output.outcome else { return nil }
        return "\(id):\(name)"
    }

    static func acknowledgedOnAppend(_ command: [UInt8], at index: Index) -> Applied? {
        acknowledgeSendOnAppend(command, at: index)
    }

    /// Every message ("id:body", as a send's receipt), then the digest of all tables.
    func transcript() throws -> [String] {
        var lines: [String] = []
        try current.state.forEachRow(in: "messages") { _, value in
            let row = try MessageRow(serializedBytes: value)
            lines.append("\(row.id):\(row.body)")
        }
        return lines + ["digest:\(try current.state.digest())"]
    }
}
