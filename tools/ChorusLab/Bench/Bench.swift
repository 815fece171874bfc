import ArgumentParser
import Client
import ClusterPKI
import Foundation

/// `chorus-lab bench`: one closed-loop run against a running Chorus or etcd cluster.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Closed-loop load against a running cluster (Chorus or etcd): ops/s, latency percentiles, errors."
    )

    @Option(help: "chorus or etcd.") var target: String = "chorus"
    @Option(help: "write (Chorus: send; etcd: put), read (Chorus: conversation page; etcd: linearizable get), or mixed (90% reads).")
    var scenario: String = "write"
    @Option(help: "Cluster endpoints, host:port,… (default: the local cluster of scripts/cluster.sh, or etcd on 2379).")
    var endpoints: String?
    @Option(name: .shortAndLong, help: "Concurrent callers.") var clients: Int = 16
    @Option(name: .shortAndLong, help: "Seconds to measure.") var duration: Double = 10
    @Option(help: "Seconds of warm-up (not measured).") var warmup: Double = 2
    @Option(help: "Bytes per message body or value.") var bodyBytes: Int = 64
    @Option(help: "Chorus writes: send to a group of this many members (each caller its own group; 0 or 1: a direct message).")
    var groupSize: Int = 0
    @Option(help: "Chorus over TLS: the cluster's CA (default: $CHORUS_CA; plaintext without one).") var ca: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        guard let scenario = Scenario(argument: scenario) else { throw ValidationError("unknown scenario '\(self.scenario)'") }
        guard clients > 0, duration > 0, warmup >= 0 else { throw ValidationError("clients and duration must be positive") }
        guard (0...1_000).contains(groupSize), groupSize <= 1 || scenario == .write else {
            throw ValidationError("--group-size is 0 to 1000, and goes with the write scenario")
        }
        let result: BenchResult
        switch target {
        case "chorus":
            let list = (endpoints ?? (7001...7005).map { "127.0.0.1:\($0)" }.joined(separator: ",")).split(separator: ",").map(String.init)
            let security: ClientSecurity = (ca ?? ProcessInfo.processInfo.environment["CHORUS_CA"]).map { .tls(ca: $0) } ?? .plaintext
            result = try await withChorusClient(endpoints: list, deadline: .seconds(10), security: security) { client in
                let operation = try await ChorusWorkload.prepare(client, scenario: scenario, callers: clients, bodyBytes: bodyBytes, groupSize: groupSize)
                let name = groupSize > 1 ? "send to a group of \(groupSize)" : scenario.name(for: "chorus")
                return try await LoadGenerator.run(target: "chorus", scenario: name, callers: clients,
                                                   warmup: Duration(seconds: warmup), duration: Duration(seconds: duration), operation: operation)
            }
        case "etcd":
            let list = (endpoints ?? "127.0.0.1:2379").split(separator: ",").map(String.init)
            result = try await EtcdClient.with(endpoints: list) { client in
                let operation = try await EtcdWorkload.prepare(client, scenario: scenario, callers: clients, bodyBytes: bodyBytes)
                return try await LoadGenerator.run(target: "etcd", scenario: scenario.name(for: "etcd"), callers: clients,
                                                   warmup: Duration(seconds: warmup), duration: Duration(seconds: duration), operation: operation)
            }
        default:
            throw ValidationError("--target is chorus or etcd")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(result.line)
        }
    }
}
