import ArgumentParser
import Client
import Foundation

/// A closed-loop load generator: C callers, each with its own pair of users, send 64-byte
/// messages through the client library for D seconds after a warm-up. Prints throughput and
/// latency percentiles of acknowledged sends.
struct SendBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-send",
        abstract: "Send-message throughput and latency against a running cluster."
    )

    @Option(help: "Cluster nodes, host:port,…") var endpoints: String = (7001...7005).map { "127.0.0.1:\($0)" }.joined(separator: ",")
    @Option(name: .shortAndLong, help: "Concurrent callers.") var clients: Int = 16
    @Option(name: .shortAndLong, help: "Seconds to measure.") var duration: Double = 10
    @Option(help: "Seconds of warm-up (not measured).") var warmup: Double = 2
    @Option(help: "Message body bytes.") var bodyBytes: Int = 64
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let list = endpoints.split(separator: ",").map(String.init)
        let run = String(UUID().uuidString.prefix(6)).lowercased()
        let body = String(repeating: "x", count: bodyBytes)
        let result = try await withChorusClient(endpoints: list, deadline: .seconds(10)) { client in
            var sessions: [(token: String, peer: String)] = []
            for caller in 0..<clients {
                let a = "b\(run)-\(caller)-a", b = "b\(run)-\(caller)-b"
                try await client.createAccount(name: a, password: "bench")
                try await client.createAccount(name: b, password: "bench")
                sessions.append((try await client.login(name: a, password: "bench").token, b))
            }
            let clock = ContinuousClock()
            let start = clock.now
            let measureFrom = start + .milliseconds(Int(warmup * 1000))
            let end = measureFrom + .milliseconds(Int(duration * 1000))
            let callers = sessions
            return try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
                for session in callers {
                    group.addTask {
                        var latencies: [Double] = []
                        var errors = 0
                        while clock.now < end {
                            let began = clock.now
                            do {
                                _ = try await client.send(token: session.token, to: session.peer, body: body)
                                if began >= measureFrom {
                                    let elapsed = clock.now - began
                                    latencies.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
                                }
                            } catch {
                                if began >= measureFrom { errors += 1 }
                            }
                        }
                        return (latencies, errors)
                    }
                }
                var all: [Double] = []
                var errors = 0
                for try await (latencies, failed) in group {
                    all += latencies
                    errors += failed
                }
                return (all.sorted(), errors)
            }
        }
        let (latencies, errors) = result
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] / 1000
        }
        let rate = Double(latencies.count) / duration
        if json {
            let object: [String: Any] = ["clients": clients, "ops_per_sec": rate, "p50_ms": percentile(0.5), "p90_ms": percentile(0.9),
                                         "p99_ms": percentile(0.99), "p999_ms": percentile(0.999), "max_ms": (latencies.last ?? 0) / 1000, "errors": errors]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "clients %d  sends/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  errors %d",
                         clients, rate, percentile(0.5), percentile(0.9), percentile(0.99), percentile(0.999), (latencies.last ?? 0) / 1000, errors))
        }
    }
}
