import ArgumentParser
import Client
import Foundation
import Synchronization

/// What the failover probe saw.
struct FailoverResult: Sendable, Codable {
    var target: String
    var quietSeconds: Double
    /// Elections during the fault-free part (should be none).
    var leaderChangesWithoutFaults: Int
    var writesAcknowledged: Int
    /// Longest time between two consecutive acknowledged writes, the kill included.
    var longestGapMs: Double
    /// From the SIGKILL of the leader to the acknowledgement of the first write begun after it.
    var firstWriteAfterKillMs: Double

    var line: String {
        String(format: "%@ failover: %d leader changes in %.0f s without faults; after SIGKILL of the leader, first write acknowledged in %.0f ms; longest gap between writes %.0f ms (%d writes)",
               target, leaderChangesWithoutFaults, quietSeconds, firstWriteAfterKillMs, longestGapMs, writesAcknowledged)
    }
}

/// One writer writing steadily through the client while the leader is SIGKILLed. Starts its
/// own 5-node cluster (Chorus or etcd), so that it can kill the leader.
struct FailoverProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover-probe",
        abstract: "Write steadily, count leader changes without faults, then SIGKILL the leader and measure the write gap (starts its own cluster)."
    )

    @Option(help: "chorus or etcd.") var target: String = "chorus"
    @Option(help: "Seconds of steady writes with no fault.") var quiet: Double = 60
    @Option(help: "Seconds of writes after the kill.") var after: Double = 5
    @Option(help: "Loopback address for the nodes.") var host: String = "127.0.0.1"
    @Option(help: "First port (clients; etcd peers use this + 100).") var basePort: Int = 7201
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let result = try await Self.probe(target: target, quiet: Duration(seconds: quiet), after: Duration(seconds: after), host: host, basePort: basePort)
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(result.line)
        }
    }

    final class StopFlag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    /// Acknowledgement times, shared by the writer and the measurement.
    final class Acknowledgements: Sendable {
        private let times = Mutex<[(started: ContinuousClock.Instant, acknowledged: ContinuousClock.Instant)]>([])
        func record(started: ContinuousClock.Instant, acknowledged: ContinuousClock.Instant) {
            times.withLock { $0.append((started, acknowledged)) }
        }
        var all: [(started: ContinuousClock.Instant, acknowledged: ContinuousClock.Instant)] { times.withLock { $0 } }
    }

    static func probe(target: String, quiet: Duration, after: Duration, host: String, basePort: Int) async throws -> FailoverResult {
        switch target {
        case "chorus":
            let cluster = try BenchCluster(host: host, basePort: basePort)
            defer { cluster.close() }
            try cluster.startAll()
            return try await withChorusClient(endpoints: cluster.endpoints, deadline: .seconds(10)) { client in
                _ = try await cluster.waitForLeader(client)
                try? await client.createAccount(name: "probe-a", password: "probe-password")
                try? await client.createAccount(name: "probe-b", password: "probe-password")
                let token = try await client.login(name: "probe-a", password: "probe-password").token
                return try await measure(
                    target: target, quiet: quiet, after: after,
                    write: { n in _ = try await client.send(token: token, to: "probe-b", body: "probe \(n)") },
                    term: { await client.status().compactMap(\.status).map(\.term).max() ?? 0 },
                    killLeader: { cluster.kill(Int(try await cluster.waitForLeader(client).nodeID)) }
                )
            }
        case "etcd":
            let cluster = try EtcdCluster(host: host, clientBasePort: basePort, peerBasePort: basePort + 100)
            defer { cluster.close() }
            try cluster.startAll()
            return try await EtcdClient.with(endpoints: cluster.endpoints, callTimeout: .milliseconds(500)) { client in
                let leader = try await cluster.waitForLeader(client)
                // The writer starts on the leader, as Chorus's client does.
                client.prefer(cluster.address(leader.id))
                return try await measure(
                    target: target, quiet: quiet, after: after,
                    write: { n in try await client.put(key: Array("probe/\(n)".utf8), value: Array("probe value \(n)".utf8)) },
                    term: { await client.statuses().compactMap(\.status).map(\.raftTerm).max() ?? 0 },
                    killLeader: { cluster.kill(try await cluster.waitForLeader(client).id) }
                )
            }
        default:
            throw ValidationError("--target is chorus or etcd")
        }
    }

    static func measure(
        target: String, quiet: Duration, after: Duration,
        write: @escaping @Sendable (Int) async throws -> Void,
        term: @escaping @Sendable () async -> UInt64,
        killLeader: @Sendable () async throws -> Void
    ) async throws -> FailoverResult {
        let clock = ContinuousClock()
        let acknowledgements = Acknowledgements()
        let stop = StopFlag()
        let start = clock.now
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var n = 0
                while !stop.isSet {
                    let started = clock.now
                    do {
                        try await write(n)
                        acknowledgements.record(started: started, acknowledged: clock.now)
                    } catch {
                        // Unacknowledged: the gap simply grows.
                    }
                    n += 1
                }
            }
            // Watch terms while nothing is wrong: any new term is an election.
            let firstTerm = await term()
            var lastTerm = firstTerm
            var changes = 0
            while clock.now < start + quiet {
                try await Task.sleep(for: .milliseconds(200))
                let current = await term()
                if current > lastTerm {
                    changes += 1
                    lastTerm = current
                }
            }
            try await killLeader()
            // After the process is gone: nothing begun from here can be acknowledged by it.
            let killedAt = clock.now
            try await Task.sleep(until: killedAt + after)
            stop.set()
            try await group.waitForAll()

            let writes = acknowledgements.all
            let times = writes.map(\.acknowledged)
            var longest = Duration.zero
            for (a, b) in zip(times, times.dropFirst()) where b - a > longest { longest = b - a }
            // A write the old leader acknowledged as it died says nothing about failover:
            // count from the first write begun after the kill.
            let firstAfter = writes.first { $0.started > killedAt }.map { $0.acknowledged - killedAt } ?? after
            return FailoverResult(target: target, quietSeconds: quiet.seconds, leaderChangesWithoutFaults: changes,
                                  writesAcknowledged: times.count, longestGapMs: longest.milliseconds,
                                  firstWriteAfterKillMs: firstAfter.milliseconds)
        }
    }
}
