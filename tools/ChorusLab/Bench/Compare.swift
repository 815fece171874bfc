import ArgumentParser
import Client
import Foundation
import ToolSupport

/// Runs the whole comparison: both 5-node clusters side by side, every scenario at every
/// caller count alternately against each, both failover probes, replay; prints a markdown
/// report and optionally writes it into a file between markers.
struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark Chorus and etcd side by side (5-node clusters on loopback, fsync on) and write a markdown report."
    )

    @Option(help: "Caller counts, comma-separated.") var callers: String = "1,16,128"
    @Option(help: "Seconds measured per run.") var duration: Double = 10
    @Option(help: "Seconds of warm-up per run.") var warmup: Double = 2
    @Option(help: "Seconds without faults in each failover probe.") var quiet: Double = 60
    @Option(help: "Entries in the replay benchmark's log (0 skips it).") var replayEntries: Int = 1_000_000
    @Option(help: "Write the report into this markdown file, between <!-- compare:begin --> and <!-- compare:end -->.") var output: String?
    @Option(help: "Loopback address for all nodes.") var host: String = "127.0.0.1"
    @Option(help: "The foreign load generator (grpc-go, one unary call per operation; scripts/lib.sh builds it); none skips its table.")
    var foreign: String = ".build/interop/unary-bench"
    @Option(help: "Connection counts for the foreign client, comma-separated.") var foreignConnections: String = "1,4"
    @Option(help: "Write every measured cell as JSON here, for bench/plot_compare.py to draw.") var points: String?

    func run() async throws {
        let counts = callers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty else { throw ValidationError("--callers is a list of numbers") }
        let started = Date()

        // Plaintext Chorus against etcd (plaintext, as configured by default), and Chorus with
        // TLS beside them, so the cost of TLS per operation is on record.
        let chorus = try BenchCluster(host: host, basePort: 7301)
        let secure = try BenchCluster(host: host, basePort: 7501, tls: true)
        let etcd = try EtcdCluster(host: host, clientBasePort: 23791, peerBasePort: 23891)
        defer { chorus.close(); secure.close(); etcd.close() }
        try chorus.startAll()
        try secure.startAll()
        try etcd.startAll()
        let (rows, foreignRows) = try await withChorusClient(endpoints: chorus.endpoints, deadline: .seconds(10)) { chorusClient in
            try await withChorusClient(endpoints: secure.endpoints, deadline: .seconds(10), security: secure.security) { secureClient in
                try await EtcdClient.with(endpoints: etcd.endpoints) { etcdClient in
                    var rows: [Row] = []
                    var foreignRows: [ForeignRow] = []
                    // Both clusters have a leader before the first cell.
                    _ = try await chorus.waitForLeader(chorusClient)
                    _ = try await etcd.waitForLeader(etcdClient)
                    if FileManager.default.isExecutableFile(atPath: foreign) {
                        // Each cell asks who leads now: on two shared cores a leader can lose an
                        // election under load, and a cell sent to a follower measures nothing.
                        foreignRows = try await runForeign(counts: counts, chorus: { chorus.address(Int(try await chorus.waitForLeader(chorusClient).nodeID)) },
                                                           secure: ({ secure.address(Int(try await secure.waitForLeader(secureClient).nodeID)) }, secure.certificates.ca),
                                                           etcd: { etcd.address(try await etcd.waitForLeader(etcdClient).id) })
                    } else {
                        say("no foreign client at \(foreign): its table is skipped (scripts/lib.sh ensure_interop builds it)")
                    }
                    for scenario in Scenario.allCases {
                        for count in counts {
                            let a = try await LoadGenerator.run(
                                target: "chorus", scenario: scenario.name(for: "chorus"), callers: count,
                                warmup: Duration(seconds: warmup), duration: Duration(seconds: duration),
                                operation: try await ChorusWorkload.prepare(chorusClient, scenario: scenario, callers: count, bodyBytes: 64))
                            say(a.line)
                            let b = try await LoadGenerator.run(
                                target: "etcd", scenario: scenario.name(for: "etcd"), callers: count,
                                warmup: Duration(seconds: warmup), duration: Duration(seconds: duration),
                                operation: try await EtcdWorkload.prepare(etcdClient, scenario: scenario, callers: count, bodyBytes: 64))
                            say(b.line)
                            let c = try await LoadGenerator.run(
                                target: "chorus-tls", scenario: scenario.name(for: "chorus"), callers: count,
                                warmup: Duration(seconds: warmup), duration: Duration(seconds: duration),
                                operation: try await ChorusWorkload.prepare(secureClient, scenario: scenario, callers: count, bodyBytes: 64))
                            say(c.line)
                            rows.append(Row(scenario: scenario, chorus: a, etcd: b, chorusTLS: c))
                        }
                    }
                    return (rows, foreignRows)
                }
            }
        }
        chorus.close()
        secure.close()
        etcd.close()

        var failovers: [FailoverResult] = []
        for target in ["chorus", "etcd"] {
            let result = try await FailoverProbe.probe(target: target, quiet: Duration(seconds: quiet), after: .seconds(5), host: host, basePort: target == "chorus" ? 7401 : 24791)
            say(result.line)
            failovers.append(result)
        }
        let replay = replayEntries > 0 ? try measureReplay(entries: replayEntries) : nil
        if let replay { say("replay: \(replay)") }
        let fsync = try measureFsync()
        if let fsync {
            say(String(format: "one fsynced LMDB commit of one entry: %.3f ms", fsync.lmdbMs)
                + (fsync.appendMs.map { String(format: "; an append and an fdatasync: %.3f ms", $0) } ?? ""))
        }

        var report = Self.report(rows: rows, foreign: foreignRows, failovers: failovers, replay: replay, fsyncMs: fsync, started: started,
                                 duration: duration, warmup: warmup, quiet: quiet, replayEntries: replayEntries)
        if let points, let output {
            // bench/compare.sh draws the picture next to the points; the report shows it.
            let picture = URL(fileURLWithPath: points).deletingPathExtension().appendingPathExtension("png").path
            report = report.replacingOccurrences(of: "\n\n", with: "\n\n![Throughput against p50 and p99 latency, every system and client](\(Self.relative(picture, from: output)))\n\n",
                                                 options: [], range: report.range(of: "\n\n"))
        }
        print(report)
        if let output { try Self.write(report, into: output) }
        if let points {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(Self.points(rows: rows, foreign: foreignRows)).write(to: URL(fileURLWithPath: points))
        }
    }

    /// One measured cell: which client drove which system, and what it saw.
    struct Point: Codable {
        var client: String
        var system: String
        var scenario: String
        var callers: Int
        var opsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
    }

    static func points(rows: [Row], foreign: [ForeignRow]) -> [Point] {
        var points: [Point] = []
        for row in rows {
            for (system, result) in [("chorus", row.chorus), ("etcd", row.etcd), ("chorus-tls", row.chorusTLS)] {
                points.append(Point(client: "swift", system: system, scenario: row.scenario.rawValue, callers: result.callers,
                                    opsPerSecond: result.opsPerSecond, p50Ms: result.p50Ms, p99Ms: result.p99Ms))
            }
        }
        for row in foreign {
            for (system, result, client) in [("chorus", row.chorus, "grpc-go"), ("etcd", row.etcd, "grpc-go"), ("chorus-tls", row.chorusTLS, "grpc-go"),
                                             ("chorus", row.chorusStreams, "grpc-go streams")] {
                guard let result else { continue }
                points.append(Point(client: "\(client), \(result.connections) conn", system: system, scenario: result.scenario, callers: result.callers,
                                    opsPerSecond: result.opsPerSecond, p50Ms: result.p50Ms, p99Ms: result.p99Ms))
            }
        }
        return points
    }

    func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Entries/s of `chorus-tools replay` over a synthetic log, run as child processes.
    func measureReplay(entries: Int) throws -> Int? {
        let directory = NSTemporaryDirectory() + "chorus-replay-bench-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var output = ""
        for (binary, arguments) in [(Binaries.current, ["synth-log", "--dir", directory, "--entries", "\(entries)"]), (Binaries.tools, ["replay", directory])] {
            let result = try runCommand(binary, arguments)
            guard result.status == 0 else { throw ToolError("\(URL(fileURLWithPath: binary).lastPathComponent) \(arguments.joined(separator: " ")) failed: \(result.output)") }
            output = result.output
        }
        guard let range = output.range(of: #"\((\d+) entries/s\)"#, options: .regularExpression) else { return nil }
        return Int(output[range].dropFirst().prefix { $0.isNumber })
    }

    /// What a durable commit of one 256-byte entry costs on this disk
    /// (`chorus-lab bench-log --batch 1`), in milliseconds: LogStore's fsynced LMDB commit, and
    /// the append and fdatasync a write-ahead log such as etcd's does instead.
    struct CommitCost: Sendable {
        var lmdbMs: Double
        var appendMs: Double?
    }

    func measureFsync() throws -> CommitCost? {
        let result = try runCommand(Binaries.current, ["bench-log", "--batch", "1", "--seconds", "2"])
        guard result.status == 0 else { throw ToolError("chorus-lab bench-log failed: \(result.output)") }
        func milliseconds(_ store: String) -> Double? {
            for line in result.output.split(whereSeparator: \.isNewline) where line.split(separator: " ").dropFirst(2).first == Substring(store) {
                if let batches = line.split(separator: " ").last.flatMap({ Double($0) }), batches > 0 { return 1_000 / batches }
            }
            return nil
        }
        return milliseconds("LogStore").map { CommitCost(lmdbMs: $0, appendMs: milliseconds("append")) }
    }

    // MARK: The foreign client

    /// What `unary-bench` printed for one run.
    struct ForeignResult: Codable, Sendable {
        var target: String
        var scenario: String
        var callers: Int
        var connections: Int
        var ok: Int
        var opsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
        var errors: [String: Int]
    }

    struct ForeignRow: Sendable {
        var chorus: ForeignResult
        var etcd: ForeignResult
        var chorusTLS: ForeignResult?
        /// The same client with its callers sharing one `SendStream` / `ReadStream` call per
        /// connection (`-streams`): over one connection, for more than one caller.
        var chorusStreams: ForeignResult?
    }

    /// The grpc-go client against each system's leader, the same code for both: writes and
    /// reads, each caller count, over one connection and over several; Chorus over TLS too for
    /// writes, and over its multiplexed streams on one connection.
    func runForeign(counts: [Int], chorus: () async throws -> String, secure: (address: () async throws -> String, ca: String),
                    etcd: () async throws -> String) async throws -> [ForeignRow] {
        let connectionCounts = foreignConnections.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var rows: [ForeignRow] = []
        var leaders: [String: String] = [:]
        /// The system's leader now, said aloud when it moved since the last cell.
        func leader(_ system: String, _ find: () async throws -> String) async throws -> String {
            let address = try await find()
            if let before = leaders[system], before != address { say("\(system): the leader moved from \(before) to \(address) between cells") }
            leaders[system] = address
            return address
        }
        func run(_ target: String, _ address: String, _ scenario: String, _ callers: Int, _ connections: Int, ca: String? = nil, streams: Bool = false) throws -> ForeignResult {
            var arguments = ["-target", target, "-scenario", scenario, "-addr", address, "-callers", "\(callers)", "-connections", "\(connections)",
                             "-warmup", "\(Int(warmup))s", "-duration", "\(Int(duration))s"]
            if let ca { arguments += ["-ca", ca] }
            if streams { arguments.append("-streams") }
            let result = try runCommand(foreign, arguments)
            guard result.status == 0, let line = result.output.split(whereSeparator: \.isNewline).last else {
                throw ToolError("\(foreign) \(arguments.joined(separator: " ")) failed: \(result.output)")
            }
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let parsed = try decoder.decode(ForeignResult.self, from: Data(line.utf8))
            say(String(format: "foreign %@%@ %@ %d callers / %d conns: %.0f ops/s, p50 %.2f ms, p99 %.2f ms", target, streams ? " (streams)" : "", scenario, callers, connections,
                       parsed.opsPerSecond, parsed.p50Ms, parsed.p99Ms))
            return parsed
        }
        for scenario in ["write", "read"] {
            for connections in connectionCounts {
                for count in counts where count >= connections {
                    let a = try run("chorus", try await leader("chorus", chorus), scenario, count, connections)
                    let b = try run("etcd", try await leader("etcd", etcd), scenario, count, connections)
                    let c = scenario == "write" ? try run("chorus", try await leader("chorus-tls", secure.address), scenario, count, connections, ca: secure.ca) : nil
                    let d = connections == 1 && count > 1 ? try run("chorus", try await leader("chorus", chorus), scenario, count, connections, streams: true) : nil
                    rows.append(ForeignRow(chorus: a, etcd: b, chorusTLS: c, chorusStreams: d))
                }
            }
        }
        return rows
    }

    // MARK: The report

    struct Row: Sendable {
        var scenario: Scenario
        var chorus: BenchResult
        var etcd: BenchResult
        var chorusTLS: BenchResult
    }

    static func report(rows: [Row], foreign: [ForeignRow], failovers: [FailoverResult], replay: Int?, fsyncMs: CommitCost? = nil,
                       started: Date, duration: Double, warmup: Double, quiet: Double, replayEntries: Int) -> String {
        var out: [String] = []
        let stamp = ISO8601DateFormatter().string(from: started)
        out.append("## Chorus and etcd side by side")
        out.append("")
        out.append("Generated by `bench/compare.sh` on \(stamp). \(Machine.description)")
        out.append("")
        out.append("Both clusters: 5 nodes on loopback, every write fsynced on a majority before it is acknowledged (etcd \(Machine.etcdVersion) in its default configuration, plaintext; Chorus plaintext with `--insecure`, and in the TLS columns a second Chorus cluster as `scripts/cluster.sh` runs it: clients over TLS, peers over mutual TLS). \(Int(warmup)) s warm-up, then \(Int(duration)) s measured per cell, Chorus and etcd alternately. Writes: Chorus sends a 64-byte message between the caller's own pair of users; etcd puts a 64-byte value under a fresh key. Reads: a page of 20 messages of the caller's conversation / a linearizable get of one key. The load generator runs on the same two cores as the ten nodes: its own CPU is part of every figure.")
        if !foreign.isEmpty {
            out.append("")
            out.append("### The same client for both: grpc-go, one unary call per operation")
            out.append("")
            out.append("The headline. `tools/interop/go/src/chorusinterop/unary-bench` (Debian's grpc-go, default settings), the same code against both systems' leaders: a write is one unary `SendMessage` / `Put` (64 bytes), a read one `History` page of 20 / one linearizable `Range`; the callers spread over one or several connections; \(Int(warmup)) s warm-up, \(Int(duration)) s measured, Chorus and etcd alternately. In the streams columns the same program's callers share one `SendStream` / `ReadStream` call on their connection (`-streams`), as our own client does: what a client in another language gains by using them.")
            out.append("")
            out.append("| scenario | callers | conns | Chorus ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | Chorus/etcd | Chorus TLS ops/s | p50 ms | Chorus streams ops/s | p50 ms | streams/etcd |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for row in foreign {
                let ratio = row.etcd.opsPerSecond > 0 ? row.chorus.opsPerSecond / row.etcd.opsPerSecond : 0
                let tls = row.chorusTLS.map { String(format: "%.0f | %.2f", $0.opsPerSecond, $0.p50Ms) } ?? "– | –"
                let streams = row.chorusStreams.map {
                    String(format: "%.0f | %.2f | **%.2f×**", $0.opsPerSecond, $0.p50Ms, row.etcd.opsPerSecond > 0 ? $0.opsPerSecond / row.etcd.opsPerSecond : 0)
                } ?? "– | – | –"
                out.append(String(format: "| %@ | %d | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | **%.2f×** | %@ | %@ |",
                                  row.chorus.scenario, row.chorus.callers, row.chorus.connections,
                                  row.chorus.opsPerSecond, row.chorus.p50Ms, row.chorus.p99Ms,
                                  row.etcd.opsPerSecond, row.etcd.p50Ms, row.etcd.p99Ms, ratio, tls, streams))
            }
        }
        out.append("")
        out.append("### What our own client gets: `chorus-lab bench`")
        out.append("")
        out.append("Not like for like: our Swift client (closed loop, HdrHistogram) batches Chorus's sends and reads over its `SendStream` and `ReadStream` calls but calls etcd one unary call per operation, and on two shared cores its own CPU per etcd call lowers etcd's apparent rate. It shows what an application on our client library gets. Mixed: 90% reads, 10% writes.")
        out.append("")
        out.append("| scenario | callers | Chorus ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | Chorus/etcd ops/s | Chorus TLS ops/s | p50 ms | TLS/plaintext ops/s | errors (C/e/T) |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let ratio = row.etcd.opsPerSecond > 0 ? row.chorus.opsPerSecond / row.etcd.opsPerSecond : 0
            let tlsRatio = row.chorus.opsPerSecond > 0 ? row.chorusTLS.opsPerSecond / row.chorus.opsPerSecond : 0
            out.append(String(format: "| %@ / %@ | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | **%.2f×** | %.0f | %.2f | %.2f× | %d/%d/%d |",
                              row.chorus.scenario, row.etcd.scenario, row.chorus.callers,
                              row.chorus.opsPerSecond, row.chorus.p50Ms, row.chorus.p99Ms,
                              row.etcd.opsPerSecond, row.etcd.p50Ms, row.etcd.p99Ms, ratio,
                              row.chorusTLS.opsPerSecond, row.chorusTLS.p50Ms, tlsRatio,
                              row.chorus.errors, row.etcd.errors, row.chorusTLS.errors))
        }
        out.append("")
        out.append("### Failover")
        out.append("")
        out.append("One writer writing steadily through the client for \(Int(quiet)) s with no fault, then the leader is SIGKILLed (`chorus-lab failover-probe`).")
        out.append("")
        out.append("| | " + failovers.map(\.target).joined(separator: " | ") + " |")
        out.append("|---|" + failovers.map { _ in "---:" }.joined(separator: "|") + "|")
        out.append("| leader changes in \(Int(quiet)) s without faults | " + failovers.map { "\($0.leaderChangesWithoutFaults)" }.joined(separator: " | ") + " |")
        out.append("| first write acknowledged after the kill | " + failovers.map { String(format: "%.0f ms", $0.firstWriteAfterKillMs) }.joined(separator: " | ") + " |")
        out.append("| longest gap between acknowledged writes | " + failovers.map { String(format: "%.0f ms", $0.longestGapMs) }.joined(separator: " | ") + " |")
        out.append("")
        if let replay {
            out.append("### Replay")
            out.append("")
            out.append("`chorus-tools replay` of a synthetic log of \(replayEntries) entries (`chorus-lab synth-log`): **\(replay) entries/s**.")
            out.append("")
        }
        out.append("### Targets")
        out.append("")
        out.append("| target | measured | met |")
        out.append("|---|---|---|")
        /// One throughput target: measured Chorus/etcd against the ratio asked for.
        func ratioTarget(_ what: String, chorus: Double, etcd: Double, wanted: Double) {
            let ratio = etcd > 0 ? chorus / etcd : 0
            out.append(String(format: "| %@ | %.2f× | %@ |", what, ratio, ratio >= wanted ? "yes" : "no"))
        }
        // Issue 33's: the same foreign client for both, one unary call per operation.
        for callers in [16, 128] {
            for (scenario, name) in [("write", "writes"), ("read", "reads")] {
                for row in foreign where row.chorus.scenario == scenario && row.chorus.callers == callers {
                    ratioTarget("grpc-go unary: \(name) ≥ 1× etcd at \(callers) callers, \(row.chorus.connections) connection(s)",
                                chorus: row.chorus.opsPerSecond, etcd: row.etcd.opsPerSecond, wanted: 1)
                }
            }
        }
        if let row = foreign.first(where: { $0.chorus.scenario == "write" && $0.chorus.callers == 1 }) {
            // The leader's commit and its followers' run at once: one commit and a round trip
            // are the floor. etcd's WAL commits with an append and one fdatasync.
            let floor = fsyncMs.map { cost in
                String(format: "; one fsynced LMDB commit %.2f ms on this disk, the floor with a round trip (the leader's and the followers' run at once)", cost.lmdbMs)
                    + (cost.appendMs.map { String(format: "; etcd's WAL commit, an append and an fdatasync, %.2f ms", $0) } ?? "")
            } ?? ""
            out.append(String(format: "| grpc-go unary: single-caller write p50 ≤ 1.2× etcd's | %.2f ms vs %.2f ms (%.2f×%@) | %@ |", row.chorus.p50Ms, row.etcd.p50Ms,
                              row.etcd.p50Ms > 0 ? row.chorus.p50Ms / row.etcd.p50Ms : 0, floor, row.chorus.p50Ms <= 1.2 * row.etcd.p50Ms ? "yes" : "no"))
        }
        // The long-term goal: 2× etcd's writes and 1.5× its reads, for any client.
        for callers in [16, 128] {
            for (scenario, name, wanted) in [(Scenario.write, "writes", 2.0), (.read, "reads", 1.5)] {
                for row in foreign where row.chorus.scenario == scenario.rawValue && row.chorus.callers == callers && row.chorus.connections == 1 {
                    ratioTarget("long-term, grpc-go unary: \(name) ≥ \(wanted == 2 ? "2" : "1.5")× etcd at \(callers) callers",
                                chorus: row.chorus.opsPerSecond, etcd: row.etcd.opsPerSecond, wanted: wanted)
                    if let streams = row.chorusStreams {
                        ratioTarget("long-term, grpc-go over Chorus's streams: \(name) ≥ \(wanted == 2 ? "2" : "1.5")× etcd's unary at \(callers) callers",
                                    chorus: streams.opsPerSecond, etcd: row.etcd.opsPerSecond, wanted: wanted)
                    }
                }
                if let row = rows.first(where: { $0.scenario == scenario && $0.chorus.callers == callers }) {
                    ratioTarget("long-term, our Swift client: \(name) ≥ \(wanted == 2 ? "2" : "1.5")× etcd at \(callers) callers",
                                chorus: row.chorus.opsPerSecond, etcd: row.etcd.opsPerSecond, wanted: wanted)
                }
            }
        }
        if let probe = failovers.first(where: { $0.target == "chorus" }) {
            out.append(String(format: "| longest write gap on leader kill ≤ 250 ms | %.0f ms | %@ |", probe.longestGapMs, probe.longestGapMs <= 250 ? "yes" : "no"))
            out.append("| no leader change in \(Int(quiet)) s of steady load | \(probe.leaderChangesWithoutFaults) | \(probe.leaderChangesWithoutFaults == 0 ? "yes" : "no") |")
        }
        if let replay {
            out.append("| replay ≥ 1,000,000 entries/s | \(replay) entries/s | \(replay >= 1_000_000 ? "yes" : "no") |")
        }
        return out.joined(separator: "\n")
    }

    static let begin = "<!-- compare:begin -->"
    static let end = "<!-- compare:end -->"

    /// Replaces the text between the markers (or appends the markers and the report).
    /// `path` as a link from the markdown file at `document` (both relative to one directory).
    static func relative(_ path: String, from document: String) -> String {
        let base = URL(fileURLWithPath: document).deletingLastPathComponent().standardizedFileURL.path + "/"
        let full = URL(fileURLWithPath: path).standardizedFileURL.path
        return full.hasPrefix(base) ? String(full.dropFirst(base.count)) : full
    }

    static func write(_ report: String, into path: String) throws {
        var text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let block = "\(begin)\n\(report)\n\(end)"
        if let from = text.range(of: begin), let to = text.range(of: end, range: from.upperBound..<text.endIndex) {
            text.replaceSubrange(from.lowerBound..<to.upperBound, with: block)
        } else {
            text += (text.hasSuffix("\n") || text.isEmpty ? "" : "\n") + "\n" + block + "\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// What the numbers were measured on.
enum Machine {
    static var description: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("MemTotal") }?
            .split(whereSeparator: { $0 == " " }).dropFirst().first.flatMap { Double($0) }.map { String(format: "%.0f GiB", $0 / 1_048_576) } ?? "?"
        let kernel = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        return "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(memory) RAM, Linux \(kernel); the load generator and all ten nodes share it."
    }

    static var etcdVersion: String {
        guard let output = try? runCommand("/usr/bin/etcd", ["--version"]).output else { return "?" }
        return output.split(separator: "\n").first { $0.hasPrefix("etcd Version") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "?"
    }
}
