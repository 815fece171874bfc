import Foundation
import Logging
import LogStore
import Projections
import Raft
@testable import Replica
import Synchronization
import Testing
@testable import Node

/// The replica loop over a state machine of a few lines (`Ledger`), with real LMDB logs and
/// threads but no network: what the loop promises any machine, apart from chat.
@Suite(.serialized) struct ReplicaLoopTests {
    /// Records what it is given; the output of a command is "index:command".
    final class Ledger: StateMachine {
        struct Record: Equatable, Codable {
            var index: Index
            var command: String
            var term: Term = 0
        }

        private struct State {
            var applied: [Record] = []
            var position: Index
            /// The membership as of `position`, as the loop recorded it (empty: never changed).
            var configuration: [UInt8] = []
            var leading: [Bool] = []
            var stopped = false
            /// Refuses every snapshot, as a build meeting a newer cluster version's would.
            var refusesSnapshots = false
        }

        /// What a snapshot of the ledger holds: everything applied, and where it stands.
        private struct Image: Codable {
            var applied: [Record]
            var position: Index
            var configuration: [UInt8]
        }

        private let state: Mutex<State>
        /// The command a new leader proposes first.
        static let leaderCommand = "leader"

        /// `position`: where a durable copy of this machine would stand after a restart.
        init(position: Index = 0) {
            state = Mutex(State(position: position))
        }

        var applied: [Record] { state.withLock { $0.applied } }
        var commands: [String] { applied.map(\.command) }
        var leading: [Bool] { state.withLock { $0.leading } }
        var wasStopped: Bool { state.withLock { $0.stopped } }

        func position() throws -> AppliedPosition {
            state.withLock { AppliedPosition(index: $0.position, term: 0, configuration: $0.configuration) }
        }

        func apply(_ entries: [CommittedLogEntry]) throws -> [(index: Index, output: String)] {
            state.withLock { state in
                var outputs: [(index: Index, output: String)] = []
                for entry in entries {
                    state.position = entry.index
                    if let configuration = entry.configuration { state.configuration = configuration }
                    guard let command = entry.command else { continue }
                    let text = String(decoding: command, as: UTF8.self)
                    state.applied.append(Record(index: entry.index, command: text, term: entry.term))
                    outputs.append((entry.index, "\(entry.index):\(text)"))
                }
                return outputs
            }
        }

        func leadershipChanged(leading: Bool) -> [[UInt8]] {
            state.withLock { $0.leading.append(leading) }
            return leading ? [Array(Self.leaderCommand.utf8)] : []
        }

        func sync() throws {}

        /// Stores everything applied so far as one snapshot file.
        func takeSnapshot(into store: SnapshotStore, termAt: (Index) throws -> Term?) throws -> SnapshotInfo {
            let image = state.withLock { Image(applied: $0.applied, position: $0.position, configuration: $0.configuration) }
            let data = try JSONEncoder().encode(image)
            let partial = "\(store.directory)/incoming/ledger-\(image.position).partial"
            guard FileManager.default.createFile(atPath: partial, contents: data) else { throw SnapshotFailure(description: "cannot write \(partial)") }
            let info = SnapshotInfo(index: image.position, term: try termAt(image.position) ?? 0, configuration: image.configuration,
                                    size: UInt64(data.count), sha256: try SnapshotInfo.checksum(of: partial))
            return try store.adopt(partial: partial, info: info)
        }

        /// Replaces everything by a stored snapshot.
        func install(_ snapshot: SnapshotInfo, from store: SnapshotStore) throws {
            if state.withLock({ $0.refusesSnapshots }) { throw RefusedSnapshot(index: snapshot.index) }
            let path = try store.verifiedDataPath(snapshot)
            guard let data = FileManager.default.contents(atPath: path) else { throw SnapshotFailure(description: "cannot read \(path)") }
            let image = try JSONDecoder().decode(Image.self, from: data)
            state.withLock { state in
                state.applied = image.applied
                state.position = image.position
                state.configuration = image.configuration
            }
        }

        func stopped() {
            state.withLock { $0.stopped = true }
        }
    }

    /// Hands each message to the replica it is for, as the peer links would. Holds them
    /// weakly: each replica holds its router.
    final class Router: MessageSender {
        private struct Held { weak var replica: Replica<Ledger>? }
        private let replicas = Mutex<[NodeID: Held]>([:])
        /// Nodes whose messages, in and out, are dropped.
        private let cutOff = Mutex<Set<NodeID>>([])
        /// Messages to lose, one each, as a broken connection would.
        private let toLose = Mutex<[@Sendable (Message) -> Bool]>([])

        func add(_ replica: Replica<Ledger>) { replicas.withLock { $0[replica.id] = Held(replica: replica) } }
        func cut(_ node: NodeID) { cutOff.withLock { _ = $0.insert(node) } }
        func restore(_ node: NodeID) { cutOff.withLock { _ = $0.remove(node) } }
        /// Loses the next message that `matches`.
        func loseNext(_ matches: @escaping @Sendable (Message) -> Bool) { toLose.withLock { $0.append(matches) } }

        func send(_ messages: [Message]) {
            let cut = cutOff.withLock { $0 }
            let delivered = messages.filter { message in
                guard !cut.contains(message.from), !cut.contains(message.to) else { return false }
                return toLose.withLock { rules in
                    guard let rule = rules.firstIndex(where: { $0(message) }) else { return true }
                    rules.remove(at: rule)
                    return false
                }
            }
            let byTarget = Dictionary(grouping: delivered, by: \.to)
            let targets = replicas.withLock { $0 }
            for (node, batch) in byTarget { targets[node]?.replica?.receive(batch) }
        }
    }

    /// Logs, in a temporary directory, for nodes 1…`size` of one cluster.
    struct Cluster {
        var directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-replica-\(UUID().uuidString)").path
        let size: Int
        var maxPendingReads = 20_000
        var proposalTimeout: Duration = .seconds(5)
        /// Entries between snapshots (0: none), and the log kept behind each.
        var snapshotInterval: UInt64 = 0
        var snapshotTrailingEntries: UInt64 = 5_000

        func configuration(_ node: NodeID) -> NodeConfiguration {
            let members = Dictionary(uniqueKeysWithValues: (1...UInt64(size)).map { ($0, PeerAddress(host: "127.0.0.1", port: 1)) })
            var configuration = NodeConfiguration(id: node, listen: PeerAddress(host: "127.0.0.1", port: 1), members: members,
                                                  dataDirectory: "\(directory)/\(node)", clusterID: "loop")
            configuration.snapshotInterval = snapshotInterval
            configuration.snapshotTrailingEntries = snapshotTrailingEntries
            configuration.maxPendingReads = maxPendingReads
            configuration.proposalTimeout = proposalTimeout
            return configuration
        }

        /// A replica of `node` over `machine`, its log opened (and bootstrapped when new).
        func replica(_ node: NodeID, _ machine: Ledger, router: Router) throws -> Replica<Ledger> {
            let configuration = configuration(node)
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory + "/snapshots", withIntermediateDirectories: true)
            let log = try LogStore(directory: configuration.dataDirectory + "/log")
            let logger = Logger(label: "replica-\(node)")
            let storage = LogStoreAdapter(store: log, bootstrap: try Bootstrap.prepare(log, configuration: configuration, logger: logger))
            var options = RaftOptions(id: node, seed: node * 7919, electionTicks: configuration.electionTicks, heartbeatTicks: configuration.heartbeatTicks)
            options.applied = try machine.position().index
            let replica = try Replica(core: RaftCore(storage: storage, options: options), storage: storage,
                                      snapshots: try SnapshotStore(directory: configuration.dataDirectory + "/snapshots"),
                                      machine: machine, transport: router, options: configuration.replicaOptions, logger: logger)
            router.add(replica)
            return replica
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Runs `replicas` on their threads for the length of `body`, then stops them and waits.
    static func running<R>(_ replicas: [Replica<Ledger>], _ body: () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for replica in replicas { group.addTask { try await replica.run() } }
            defer { for replica in replicas { replica.stop() } }
            return try await body()
        }
    }

    /// Runs `body` with a three-node cluster of `Ledger`s running on their threads; removes
    /// its logs after.
    static func withRunningCluster<R>(_ body: (Router, [Ledger], [Replica<Ledger>]) async throws -> R) async throws -> R {
        let cluster = Cluster(size: 3)
        defer { cluster.remove() }
        let router = Router()
        let machines = (1...3).map { _ in Ledger() }
        let replicas = try (1...3).map { try cluster.replica(NodeID($0), machines[$0 - 1], router: router) }
        return try await running(replicas) { try await body(router, machines, replicas) }
    }

    /// The replica that leads, once one does.
    static func leader(of replicas: [Replica<Ledger>]) async throws -> Replica<Ledger> {
        for _ in 0..<500 {
            if let leader = replicas.first(where: \.isLeader) { return leader }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ReplicaError.timedOut
    }

    /// The leader, once no other replica believes it leads (a deposed leader that was cut
    /// off believes so until it hears the new term).
    static func soleLeader(of replicas: [Replica<Ledger>]) async throws -> Replica<Ledger> {
        for _ in 0..<500 {
            let leading = replicas.filter(\.isLeader)
            if leading.count == 1 { return leading[0] }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ReplicaError.timedOut
    }

    static func propose(_ text: String, to replica: Replica<Ledger>) async throws -> String {
        try await replica.propose(Array(text.utf8))
    }

    @Test func eachCallerGetsTheOutputOfItsOwnEntryAndEveryMachineAppliesTheSameLog() async throws {
        let sent = (0..<60).map { "command-\($0)" }
        let (outputs, machines) = try await Self.withRunningCluster { _, machines, replicas in
            let leader = try await Self.leader(of: replicas)
            let outputs = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for text in sent { group.addTask { (text, try await Self.propose(text, to: leader)) } }
                return try await group.reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
            }
            return (outputs, machines)
        }

        // Each caller's output names its own command, at an index of its own.
        for text in sent { #expect(outputs[text]?.hasSuffix(":" + text) == true, "\(text) → \(outputs[text] ?? "nothing")") }
        #expect(Set(outputs.values.map { $0.split(separator: ":")[0] }).count == sent.count)
        // The leader applied what it answered from; a new leader's own command comes before
        // any caller's.
        let leaderLog = try #require(machines.first { $0.leading.last == true })
        #expect(leaderLog.commands.first == Ledger.leaderCommand)
        #expect(Set(leaderLog.commands.dropFirst()) == Set(sent))
        // The followers applied the same entries in the same order, as far as they got.
        for machine in machines {
            #expect(machine.applied == Array(leaderLog.applied.prefix(machine.applied.count)))
            #expect(machine.applied.map(\.index) == machine.applied.map(\.index).sorted())
            #expect(machine.wasStopped)
        }
    }

    @Test func aDeposedLeaderFailsWhatItHoldsAndItsMachineIsTold() async throws {
        try await Self.withRunningCluster { router, machines, replicas in
            let old = try await Self.leader(of: replicas)
            let oldMachine = machines[Int(old.id) - 1]
            _ = try await Self.propose("before", to: old)
            router.cut(old.id)
            let stranded = Task { try await Self.propose("stranded", to: old) }
            let new = try await Self.leader(of: replicas.filter { $0 !== old })
            let newMachine = machines[Int(new.id) - 1]
            _ = try await Self.propose("after", to: new)
            router.restore(old.id)

            // It could not commit: the caller hears leadership was lost (not a timeout, and
            // not success), and the machine never sees the entry.
            do {
                _ = try await stranded.value
                Issue.record("a proposal the cut-off leader could not commit succeeded")
            } catch let error as ReplicaError {
                guard case .leadershipLost = error else { Issue.record("expected leadershipLost, got \(error)"); return }
            }
            #expect(oldMachine.leading.contains(true) && oldMachine.leading.last == false)
            // A read through the old leader, now a follower, sees what the new one committed
            // (once it has heard of the new leader: until then it has nobody to ask).
            for _ in 0..<100 where old.leader != new.id { try await Task.sleep(for: .milliseconds(10)) }
            try await old.linearizableRead()
            #expect(oldMachine.commands == newMachine.commands.prefix(oldMachine.commands.count).map { $0 })
            #expect(oldMachine.commands.contains("after") && !oldMachine.commands.contains("stranded"))
            // The new term began with the new leader's own command.
            #expect(newMachine.commands.suffix(2) == [Ledger.leaderCommand, "after"])
        }
    }

    /// A leader's own first command of a term comes before every client's command of that
    /// term, even one that reached it in the same breath as the vote that made it leader (a
    /// chat leader's detach-all must not follow, and so undo, an attach). Proposers hammer
    /// every node through three elections; in each term the leader's command comes first.
    @Test func aNewLeadersOwnCommandPrecedesEveryRequestOfItsTerm() async throws {
        try await Self.withRunningCluster { router, machines, replicas in
            let hammering = Task {
                await withDiscardingTaskGroup { group in
                    for replica in replicas {
                        group.addTask {
                            while !Task.isCancelled {
                                if (try? await Self.propose("attach", to: replica)) == nil { await Task.yield() }
                            }
                        }
                    }
                }
            }
            for _ in 0..<3 {
                let leader = try await Self.soleLeader(of: replicas)
                router.cut(leader.id)
                _ = try await Self.leader(of: replicas.filter { $0 !== leader })
                router.restore(leader.id)
            }
            hammering.cancel()
            _ = await hammering.value
            let leader = try await Self.leader(of: replicas)
            _ = try await Self.propose("last", to: leader)
            let applied = machines[Int(leader.id) - 1].applied
            let terms = Set(applied.filter { $0.command == Ledger.leaderCommand }.map(\.term))
            #expect(terms.count >= 2)
            for term in terms {
                let ofTerm = applied.filter { $0.term == term }
                #expect(ofTerm.first?.command == Ledger.leaderCommand, "term \(term) began with \(ofTerm.first?.command ?? "nothing")")
            }
        }
    }

    /// A leader takes no configuration change before an entry of its term has committed, and
    /// does not know who answers it before its first quorum check: a removal asked the moment
    /// it leads waits for both, then is made (rather than refused).
    @Test func aRemovalAskedTheMomentALeaderIsElectedWaitsAndIsMade() async throws {
        try await Self.withRunningCluster { router, machines, replicas in
            let leader = try await Self.leader(of: replicas)
            let follower = try #require(replicas.first { $0 !== leader }).id
            let index = try await leader.changeMembership(.remove(follower, force: false))
            #expect(index > 0)
            #expect(try await Self.propose("after", to: leader).hasSuffix(":after"))
        }
    }

    @Test func readsPastTheirBoundFailAtOnceAndTheBoundFreesAsTheyEnd() async throws {
        var cluster = Cluster(size: 3)
        cluster.maxPendingReads = 3
        defer { cluster.remove() }
        let router = Router()
        let replicas = try (1...3).map { try cluster.replica(NodeID($0), Ledger(), router: router) }

        try await Self.running(replicas) {
            let old = try await Self.leader(of: replicas)
            try await old.linearizableRead()
            // Cut off, the leader cannot confirm a round: its reads wait.
            router.cut(old.id)
            let stranded = (0..<3).map { _ in Task { () async -> ReplicaError? in
                do throws(ReplicaError) { try await old.linearizableRead(); return nil } catch { return error }
            } }
            for _ in 0..<200 where old.pendingReadCount < 3 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(old.pendingReadCount == 3)
            // The next fails at once, whatever the leader's state.
            await #expect(throws: ReplicaError.readsOverloaded(reads: 3)) { try await old.linearizableRead() }
            // Check-quorum demotes it; its reads fail and give their places back.
            for task in stranded {
                let error = await task.value
                guard case .leadershipLost? = error else { Issue.record("a stranded read ended with \(String(describing: error))"); continue }
            }
            #expect(old.pendingReadCount == 0)
            router.restore(old.id)
            let new = try await Self.leader(of: replicas)
            for _ in 0..<100 where old.leader != new.id { try await Task.sleep(for: .milliseconds(10)) }
            try await old.linearizableRead()
        }
    }

    @Test func aFollowersReadWhoseRequestOrAnswerIsLostIsAskedAgain() async throws {
        // Long enough that a read left to the proposal timeout fails the test rather than
        // passing late.
        var cluster = Cluster(size: 3)
        cluster.proposalTimeout = .seconds(30)
        defer { cluster.remove() }
        let router = Router()
        let machines = [Ledger(), Ledger(), Ledger()]
        let replicas = try (1...3).map { try cluster.replica(NodeID($0), machines[$0 - 1], router: router) }

        try await Self.running(replicas) {
            let leader = try await Self.leader(of: replicas)
            let index = replicas.firstIndex { $0.id != leader.id }!
            let follower = replicas[index]
            for _ in 0..<100 where follower.leader != leader.id { try await Task.sleep(for: .milliseconds(10)) }

            _ = try await Self.propose("before the lost request", to: leader)
            router.loseNext { if case .readIndex = $0.kind { $0.from == follower.id } else { false } }
            try await follower.linearizableRead()
            #expect(machines[index].commands.contains("before the lost request"), "the read waited for what was committed before it")

            _ = try await Self.propose("before the lost answer", to: leader)
            router.loseNext { if case .readIndexResponse = $0.kind { $0.to == follower.id } else { false } }
            try await follower.linearizableRead()
            #expect(machines[index].commands.contains("before the lost answer"))
        }
    }

    /// Runs node 1 of a one-node cluster over `machine` for the length of `body`, and returns
    /// once its log is closed, so that the next session may open it again.
    static func session<R>(_ cluster: Cluster, _ machine: Ledger, _ body: (Replica<Ledger>) async throws -> R) async throws -> R {
        weak var closed: Replica<Ledger>?
        let result: R = try await {
            let replica = try cluster.replica(1, machine, router: Router())
            closed = replica
            return try await running([replica]) {
                try await body(try await leader(of: [replica]))
            }
        }()
        for _ in 0..<200 where closed != nil { try await Task.sleep(for: .milliseconds(5)) }
        #expect(closed == nil, "the replica outlived its session")
        return result
    }

    @Test func aRestartAppliesOnlyWhatTheMachineDoesNotHold() async throws {
        let cluster = Cluster(size: 1)
        defer { cluster.remove() }
        let first = Ledger()
        let outputs = try await Self.session(cluster, first) { leader in
            var outputs: [String] = []
            for n in 1...5 { outputs.append(try await Self.propose("m\(n)", to: leader)) }
            return outputs
        }
        #expect(first.commands == [Ledger.leaderCommand, "m1", "m2", "m3", "m4", "m5"])
        let third = try #require(Index(outputs[2].prefix { $0 != ":" }))

        // A machine that holds everything up to the third message (its durable copy, say) is
        // given only what follows, then the new term's own command.
        let resumed = Ledger(position: third)
        try await Self.session(cluster, resumed) { try await $0.linearizableRead() }
        #expect(resumed.commands == ["m4", "m5", Ledger.leaderCommand])
        #expect(resumed.applied.allSatisfy { $0.index > third })

        // A machine that holds nothing is given the whole log again: it is the source of truth.
        let empty = Ledger()
        try await Self.session(cluster, empty) { try await $0.linearizableRead() }
        #expect(empty.commands == [Ledger.leaderCommand, "m1", "m2", "m3", "m4", "m5", Ledger.leaderCommand, Ledger.leaderCommand])
    }

    @Test func whatIsPendingWhenTheLoopStopsFailsAndTheMachineIsTold() async throws {
        let cluster = Cluster(size: 1)
        defer { cluster.remove() }
        let machine = Ledger()
        let replica = try cluster.replica(1, machine, router: Router())
        try await Self.running([replica]) {
            _ = try await Self.leader(of: [replica])
        }
        #expect(machine.wasStopped)
        // Nothing takes the proposal any more: it fails at once instead of waiting forever.
        await #expect(throws: ReplicaError.stopped) { _ = try await Self.propose("late", to: replica) }
    }
}

/// A snapshot the test ledger was told to refuse (`Ledger.refuseSnapshots`).
struct RefusedSnapshot: MachineRefusal {
    let index: UInt64
    var description: String { "the snapshot at \(index) is refused" }
}

extension ReplicaLoopTests.Ledger {
    /// From now on every snapshot handed to it is refused.
    func refuseSnapshots() {
        state.withLock { $0.refusesSnapshots = true }
    }
}
