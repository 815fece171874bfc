import ArgumentParser
import Client
import Foundation

/// How long a follower that missed N entries takes to catch up: from the log (nothing was
/// compacted) and by InstallSnapshot (every other node compacted behind a snapshot).
struct CatchUpBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-catchup",
        abstract: "Time for a follower N entries behind to catch up, from the log and by snapshot (starts its own 5-node cluster)."
    )

    @Option(help: "Entries the follower misses.") var entries: Int = 100_000
    @Option(help: "Concurrent senders producing them.") var clients: Int = 128
    @Option(help: "Loopback address for the nodes.") var host: String = "127.0.0.1"
    @Option(help: "Port of node 1.") var basePort: Int = 7101
    @Option(help: "Which ways to measure: log, snapshot.") var mode: [String] = ["log", "snapshot"]

    func run() async throws {
        for mode in mode {
            guard mode == "log" || mode == "snapshot" else { throw ValidationError("--mode is log or snapshot") }
            let cluster = try BenchCluster(host: host, basePort: basePort, extraArguments: ["--snapshot-interval", "0", "--snapshot-keep", "1000", "--password-iterations", "1000"])
            defer { cluster.close() }
            try cluster.startAll()
            try await withChorusClient(endpoints: cluster.endpoints, deadline: .seconds(20)) { client in
                let leader = try await cluster.waitForLeader(client)
                let follower = cluster.ids.first { $0 != Int(leader.nodeID) }!
                let run = String(UUID().uuidString.prefix(6)).lowercased()
                var tokens: [String] = []
                for n in 0..<16 {
                    try await client.createAccount(name: "c\(run)-\(n)", password: "bench")
                    tokens.append(try await client.login(name: "c\(run)-\(n)", password: "bench").token)
                }
                cluster.kill(follower)
                let before = await client.status().compactMap(\.status).map(\.commitIndex).max() ?? 0
                let names = (0..<16).map { "c\(run)-\($0)" }
                let senders = tokens
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<clients {
                        group.addTask {
                            for n in stride(from: worker, to: entries, by: clients) {
                                _ = try await client.send(token: senders[n % 16], to: names[(n + 1) % 16], body: "catch-up \(n)")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                if mode == "snapshot" {
                    for id in cluster.ids where id != follower {
                        _ = try await takeSnapshot(endpoint: cluster.address(id))
                    }
                }
                let target = try await cluster.waitForLeader(client).commitIndex
                let clock = ContinuousClock()
                let started = clock.now
                try cluster.start(follower)
                while true {
                    let statuses = await client.status()
                    if let status = statuses.first(where: { $0.endpoint == cluster.address(follower) })?.status, status.appliedIndex >= target { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let elapsed = clock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let behind = target - before
                print(String(format: "%@: follower %d entries behind caught up in %.2f s (%.0f entries/s), process start included",
                             mode, behind, seconds, Double(behind) / seconds))
            }
        }
    }
}
