import API
import Client
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRPCCore
import Launcher
import Testing

/// The metrics against the real thing: Debian's Prometheus scrapes a 5-node cluster every
/// second, and its query API must show what `ClusterStatus` shows, and a leader change when
/// the leader is killed. `scripts/test.sh` installs Prometheus when missing.
extension EdgeTests {
    static let prometheus = "/usr/bin/prometheus"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: prometheus), "needs Debian's prometheus (scripts/test.sh installs it)"))
    func prometheusScrapesTheClusterAndSeesALeaderChange() async throws {
        let cluster = try TestCluster(size: 5)
        cluster.metrics = true
        try cluster.startAll()
        defer { cluster.stopAll() }
        let server = try PrometheusServer(scraping: cluster.ids.map(cluster.metricsAddress), root: cluster.root, listen: "\(cluster.host):\(cluster.basePort + 300)")
        defer { server.stop() }
        try await cluster.withClient { client in
            let leader = try await cluster.waitForLeader(client)
            let alice = try await client.newUser("alice")
            _ = try await client.newUser("bob")
            for i in 0..<20 { _ = try await client.send(token: alice, to: "bob", body: "scraped \(i)") }
            try await cluster.waitForConvergence(client)
            let status = try #require(await client.status().compactMap(\.status).first { $0.nodeID == UInt64(leader) })

            // The leader's term and commit index as Prometheus scraped them agree with ClusterStatus
            // (nothing is written meanwhile, so they hold still).
            let leaderInstance = cluster.metricsAddress(leader)
            let commit = try await server.waitFor("chorus_raft_commit_index{instance=\"\(leaderInstance)\"}") { $0.first?.value == Double(status.commitIndex) }
            #expect(commit.first?.value == Double(status.commitIndex))
            let term = try await server.waitFor("chorus_raft_term{instance=\"\(leaderInstance)\"}") { $0.first?.value == Double(status.term) }
            #expect(term.first?.value == Double(status.term))
            let leaders = try await server.waitFor("chorus_raft_role{role=\"leader\"} == 1") { $0.count == 1 }
            #expect(leaders.map(\.instance) == [leaderInstance])
            let all = try await server.waitFor("chorus_raft_commit_index") { $0.count == 5 }
            #expect(Set(all.map(\.instance)) == Set(cluster.ids.map(cluster.metricsAddress)))
            // Calls by method and code, and proposals by outcome: two accounts, twenty sends
            // (on the client's send stream, so counted as proposals, not as unary calls).
            let created = try await server.waitFor("sum(chorus_grpc_requests_total{method=\"chorus.v1.Chat/CreateAccount\",code=\"ok\"})") { $0.first?.value == 2 }
            #expect(created.first?.value == 2)
            let committed = try await server.waitFor("chorus_proposals_total{outcome=\"committed\",instance=\"\(leaderInstance)\"}") { ($0.first?.value ?? 0) >= 22 }
            #expect((committed.first?.value ?? 0) >= 22)

            // Killing the leader shows as a leader change on the others, a new leader, and the
            // old one down.
            let before = try await server.query("sum(chorus_raft_leader_changes_total)").first?.value ?? 0
            cluster.kill(leader)
            let next = try await cluster.waitForLeader(client, excluding: [leader])
            // Each of the four survivors has seen two leaders at least: the first and the next.
            let changes = try await server.waitFor("sum(chorus_raft_leader_changes_total{instance!=\"\(leaderInstance)\"})") { ($0.first?.value ?? 0) >= 8 }
            #expect((changes.first?.value ?? 0) >= 8)
            // Exactly one new leader (leadership may move again after the kill, so not
            // necessarily the one the client saw first), and not the killed node.
            _ = next
            let newLeaders = try await server.waitFor("chorus_raft_role{role=\"leader\"} == 1") { $0.count == 1 && $0[0].instance != leaderInstance }
            #expect(newLeaders.count == 1 && newLeaders.first?.instance != leaderInstance, "\(newLeaders.map(\.instance))")
            let down = try await server.waitFor("up{instance=\"\(leaderInstance)\"} == 0") { $0.count == 1 }
            #expect(down.count == 1)
            print("prometheus: leader \(leader) → \(next); leader changes seen \(before) → \(changes.first?.value ?? 0)")
        }
    }
}

/// A Prometheus server on loopback for one test, scraping `targets` every second, with its
/// data in `root/prometheus`; stopped (SIGTERM, waited for) by `stop`.
final class PrometheusServer: @unchecked Sendable {
    let process = Process()
    let listen: String

    init(scraping targets: [String], root: String, listen: String) throws {
        self.listen = listen
        let config = root + "/prometheus.yml"
        let text = """
        global:
          scrape_interval: 1s
          scrape_timeout: 900ms
          evaluation_interval: 1s
        scrape_configs:
          - job_name: chorus
            static_configs:
              - targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]

        """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: EdgeTests.prometheus)
        process.arguments = ["--config.file=\(config)", "--storage.tsdb.path=\(root)/prometheus", "--web.listen-address=\(listen)", "--log.level=warn"]
        _ = FileManager.default.createFile(atPath: root + "/prometheus.log", contents: nil)
        let output = FileHandle(forWritingAtPath: root + "/prometheus.log")
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    struct Sample: Sendable {
        var instance: String
        var value: Double
    }

    /// An instant query's samples (an error from Prometheus throws).
    func query(_ expression: String) async throws -> [Sample] {
        var components = URLComponents(string: "http://\(listen)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        let (data, _) = try await URLSession.shared.data(from: components.url!)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], object["status"] as? String == "success",
              let result = (object["data"] as? [String: Any])?["result"] as? [[String: Any]]
        else { throw TestFailure("Prometheus refused '\(expression)': \(String(decoding: data, as: UTF8.self))") }
        return result.compactMap { series in
            let labels = series["metric"] as? [String: String] ?? [:]
            guard let pair = series["value"] as? [Any], pair.count == 2, let text = pair[1] as? String, let value = Double(text) else { return nil }
            return Sample(instance: labels["instance"] ?? "", value: value)
        }
    }

    /// Queries until `accept` takes the samples (Prometheus scrapes every second), for up to 30 s;
    /// returns the last samples either way.
    func waitFor(_ expression: String, within: Duration = .seconds(30), _ accept: ([Sample]) -> Bool) async throws -> [Sample] {
        let clock = ContinuousClock()
        let end = clock.now + within
        var last: [Sample] = []
        while clock.now < end {
            last = (try? await query(expression)) ?? []
            if accept(last) { return last }
            try await Task.sleep(for: .milliseconds(250))
        }
        return last
    }
}

/// Health that means something: `/healthz` says the process lives, `/readyz` and the gRPC
/// health service say whether it can serve, and follow the cluster's state both ways.
extension EdgeTests {
    @Test func readinessFollowsTheNodesStateOverHTTPAndGRPC() async throws {
        let cluster = try TestCluster(size: 3)
        cluster.metrics = true
        try cluster.startAll()
        defer { cluster.stopAll() }
        let leader = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        for id in cluster.ids {
            #expect(try await httpGet(cluster.metricsAddress(id), "/healthz") == (200, "ok\n"))
            let ready = try await waitForHTTP(cluster.metricsAddress(id), "/readyz") { $0.status == 200 }
            #expect(ready.status == 200 && ready.body == "ready\n")
        }
        // Alone, a node knows no leader: alive, not ready, NOT_SERVING, and `chorus status` says why.
        let survivor = leader == 1 ? 2 : 1
        for id in cluster.ids where id != survivor { cluster.kill(id) }
        let alone = try await waitForHTTP(cluster.metricsAddress(survivor), "/readyz") { $0.status == 503 }
        #expect(alone.status == 503)
        #expect(alone.body.contains("not ready: no leader known"), "\(alone.body)")
        #expect(try await httpGet(cluster.metricsAddress(survivor), "/healthz").status == 200)
        let health = try await RawChat.withStub(cluster.address(survivor), security: cluster.security) { raw in
            try await Grpc_Health_V1_Health.Client(wrapping: raw).check(.with { $0.service = "chorus.v1.Chat" }).status
        }
        #expect(health == .notServing)
        let status = try await cluster.withClient { client in await client.status().compactMap(\.status).first { $0.nodeID == UInt64(survivor) } }
        #expect(status?.ready == false)
        #expect(status?.notReady.first?.hasPrefix("no leader known") == true, "\(String(describing: status?.notReady))")
        // The others back: ready again.
        for id in cluster.ids where id != survivor { try cluster.start(id) }
        let back = try await waitForHTTP(cluster.metricsAddress(survivor), "/readyz", within: .seconds(30)) { $0.status == 200 }
        #expect(back.status == 200)
    }

    /// The log level is checked, and `--log-format json` writes one object per line with the
    /// role change's term as a field.
    @Test func logFlagsAreValidatedAndJSONLinesCarryFields() async throws {
        let refused = try await runNode(["run", "--id", "1", "--listen", "127.0.0.1:1", "--data-dir", NSTemporaryDirectory() + "chorus-never", "--insecure",
                                   "--peer", "1=127.0.0.1:1", "--log-level", "loud"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("--log-level 'loud' is not one of trace, debug, info, notice, warning, error, critical"), "\(refused.output)")

        let cluster = try TestCluster(size: 1)
        cluster.extraArguments = ["--log-format", "json"]
        try cluster.startAll()
        defer { cluster.stopAll() }
        _ = try await cluster.withClient { client in try await cluster.waitForLeader(client) }
        let lines = cluster.log(1).split(whereSeparator: \.isNewline)
        #expect(!lines.isEmpty)
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(objects.count == lines.count, "every line is a JSON object of strings")
        let became = objects.first { $0["message"]?.hasPrefix("role leader") == true }
        #expect(became?["level"] == "info" && became?["node"] == "1" && became?["role"] == "leader" && became?["term"] != nil, "\(String(describing: became))")
    }
}

/// One GET over plain HTTP: status and body.
func httpGet(_ address: String, _ path: String) async throws -> (status: Int, body: String) {
    let (data, response) = try await URLSession.shared.data(from: URL(string: "http://\(address)\(path)")!)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

/// GETs until `accept` takes the answer, for up to `within`; returns the last answer.
func waitForHTTP(_ address: String, _ path: String, within: Duration = .seconds(20), _ accept: ((status: Int, body: String)) -> Bool) async throws -> (status: Int, body: String) {
    let clock = ContinuousClock()
    let end = clock.now + within
    var last = (status: 0, body: "")
    while clock.now < end {
        if let answer = try? await httpGet(address, path) {
            last = answer
            if accept(answer) { return answer }
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    return last
}

/// Runs `chorus-node` to completion; its exit status and output.
func runNode(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await offThePool { try NodeProcesses.run(TestCluster.executable.path, arguments) }
}

/// The scrape configuration and alert rules shipped under docs/monitoring are valid for the
/// Prometheus the tests run.
extension EdgeTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "needs Debian's prometheus (scripts/test.sh installs it)"))
    func shippedPrometheusConfigurationAndAlertsAreValid() throws {
        let (status, output) = try NodeProcesses.run("/usr/bin/promtool", ["check", "config", "docs/monitoring/prometheus.yml"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("SUCCESS: 11 rules found"), "\(output)")
    }
}
