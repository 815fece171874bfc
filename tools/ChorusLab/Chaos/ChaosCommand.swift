import ArgumentParser
import Foundation
import ToolSupport

/// `chorus-lab chaos`: a real 5-node cluster in network namespaces under a recorded
/// workload while faults are injected; then the history is checked.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Fault-injection run: 5 nodes in network namespaces, a recorded workload, random faults, a checked history (needs root)."
    )

    @Option(help: "Seconds of workload under faults.") var seconds: Double = 120
    @Option(help: "The run's seed (default: random); the same seed makes the same choices.") var seed: UInt64?
    @Option(help: "Seconds between faults (min).") var faultEvery: Double = 3
    @Option(help: "A deliberate bug to show the checker catches it: none, \(ChaosCommand.plantedBugs.keys.sorted().joined(separator: ", ")) (the nodes must be debug builds).") var plantBug: String = "none"

    /// Each bug `--plant-bug` names, and the environment variable that plants it in a debug
    /// node (`PlantedNodeBugs`). Each makes one rule of the checker fire.
    static let plantedBugs: [String: String] = [
        "ack-on-append": "CHORUS_UNSAFE_ACK_ON_APPEND",
        "skip-deletes": "CHORUS_UNSAFE_SKIP_DELETES",
        "delete-extra": "CHORUS_UNSAFE_DELETE_EXTRA",
        "local-reads": "CHORUS_UNSAFE_LOCAL_READS",
    ]
    @Option(help: "The faults to choose from, comma-separated (default: all): \(Fault.allCases.map(\.name).joined(separator: ", ")).") var faults: String?
    @Flag(help: "Keep the run's directory (data, logs, history).") var keep = false

    /// The faults this run may inject.
    func faultKinds() throws -> [Fault] {
        guard let faults else { return Fault.allCases }
        return try faults.split(separator: ",").map { name in
            guard let fault = Fault.allCases.first(where: { $0.name == name.trimmingCharacters(in: .whitespaces) }) else {
                throw ValidationError("unknown fault '\(name)'; choose from \(Fault.allCases.map(\.name).joined(separator: ", "))")
            }
            return fault
        }
    }

    func run() async throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64(1) << 48)
        guard plantBug == "none" || Self.plantedBugs[plantBug] != nil else {
            throw ValidationError("--plant-bug is none or one of \(Self.plantedBugs.keys.sorted().joined(separator: ", "))")
        }
        let kinds = try faultKinds()
        let lab = try Lab(nodes: 5)
        let root = NSTemporaryDirectory() + lab.prefix
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var failed = false
        defer {
            lab.close()
            // A real failure keeps its evidence; a planted bug's expected one does not.
            if keep || (failed && plantBug == "none") {
                print("run directory kept: \(root)")
            } else {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
        say("seed \(seed); hosts \(lab.prefix)-n1…n5 on 198.18.0.11–15, client \(lab.clientAddress)")
        try lab.build()
        let cluster = try ChaosCluster(lab: lab, root: root, environment: Self.plantedBugs[plantBug].map { [$0: "1"] } ?? [:])
        defer { cluster.killAll() }
        // SIGTERM or SIGINT (CI stopping a run, Ctrl-C) would end the process without the
        // defers above: nothing would then kill the nodes (a paused one among them) or delete
        // the namespaces. The handler does, and exits as the signal would have.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let stops = [SIGINT, SIGTERM].map { (number: Int32) -> any DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                say("stopped by signal \(number): killing the nodes and deleting the lab's namespaces")
                cluster.killAll()
                lab.close()
                try? FileManager.default.removeItem(atPath: root)
                Foundation.exit(128 + number)
            }
            source.resume()
            return source
        }
        defer { stops.forEach { $0.cancel() } }
        for host in cluster.hosts { try cluster.start(host: host) }

        let workload = try workloadProcess(cluster: cluster, lab: lab, arguments: ["--seconds", "\(seconds)", "--seed", "\(seed)", "--history", root + "/history.jsonl"], log: root + "/workload.log")
        var nemesis = Nemesis(lab: lab, cluster: cluster, random: SplitMix(seed: seed ^ 0xFA17))
        let clock = ContinuousClock()
        let end = clock.now + Duration(seconds: seconds)
        var faults: [String] = []
        // Let the cluster elect and the workload set up before the first fault.
        try await Task.sleep(for: .seconds(3))
        while clock.now < end - .seconds(2) && workload.isRunning {
            // A full restart at most every sixth fault: it takes the longest to recover from.
            let eligible = kinds.filter { $0 != .killAll || faults.count % 6 == 5 }
            let fault = nemesis.pick(eligible.isEmpty ? kinds : eligible)
            let what = try nemesis.inject(fault)
            faults.append(what)
            say(String(format: "%6.1f s  %@", (Duration(seconds: seconds) - (end - clock.now)).seconds, what))
            // Now and then a second fault lands before the first heals.
            let others = kinds.filter { $0.overlaps && $0 != fault }
            if fault.overlaps, !others.isEmpty, nemesis.random.next() % 10 < 3 {
                try await Task.sleep(for: .milliseconds(300 + Int(nemesis.random.next() % 1500)))
                let second = try nemesis.inject(nemesis.pick(others))
                faults.append(second)
                say(String(format: "%6.1f s  and, overlapping: %@", (Duration(seconds: seconds) - (end - clock.now)).seconds, second))
            }
            let hold = fault.hold ?? 1000...4000
            try await Task.sleep(for: .milliseconds(hold.lowerBound + Int(nemesis.random.next() % UInt64(hold.count))))
            try nemesis.heal()
            try await Task.sleep(for: Duration(seconds: faultEvery) + .milliseconds(Int(nemesis.random.next() % 2000)))
        }
        try nemesis.heal()
        while workload.isRunning { try await Task.sleep(for: .milliseconds(100)) }
        guard workload.terminationStatus == 0 else {
            failed = true
            throw ToolError("the workload failed (exit \(workload.terminationStatus)); see \(root)/workload.log")
        }

        // Healed: read back everything, then stop the nodes and compare the replicas.
        var phase = clock.now
        /// How long each step after the faults took, for whoever waits on a run.
        func took() -> String {
            defer { phase = clock.now }
            return String(format: "%.1f s", (clock.now - phase).seconds)
        }
        let final = try workloadProcess(cluster: cluster, lab: lab, arguments: ["--final", root + "/final.json", "--history", root + "/history.jsonl"], log: root + "/final.log")
        final.waitUntilExit()
        guard final.terminationStatus == 0 else {
            failed = true
            throw ToolError("reading the final state failed; see \(root)/final.log")
        }
        // The members at the end, as the cluster says: after membership faults they are not
        // the five it began with, and a retired node's data stopped where it left.
        let members = try finalMembers(cluster: cluster, lab: lab)
        let readBack = took()
        cluster.stopAll()
        let stopped = took()
        let verify = try runCommand(Binaries.tools, ["verify"] + members.map(cluster.dataDirectory(node:)))
        let verified = took()

        let operations = try HistoryFile.read(root + "/history.jsonl")
        let state = try JSONDecoder().decode(FinalState.self, from: Data(contentsOf: URL(fileURLWithPath: root + "/final.json")))
        let loaded = took()
        var checker = Checker(operations: operations, final: state)
        let violations = checker.check()
        say("after the faults: workload ended and state read back in \(readBack), nodes stopped in \(stopped), replicas verified in \(verified), history loaded in \(loaded), checked in \(took())")

        let counts = Dictionary(grouping: operations) { "\($0.kind.rawValue) \($0.outcome.rawValue)" }.mapValues(\.count)
        print("operations: \(operations.count) (" + counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ") + ")")
        print("faults injected: \(faults.count); messages stored at the end: \(state.messages.count); first write after healing: \(Int(state.firstWriteAfterHealMs)) ms")
        let membership = faults.filter {
            $0.hasPrefix("add ") || $0.hasPrefix("remove ") || $0.hasPrefix("replace") || $0.hasPrefix("transfer ") || $0.contains("then: add ") || $0.contains("then: remove ")
        }
        print("membership faults: \(membership.count) (\(membership.filter { $0.contains(": ok") }.count) changes made); members at the end: \(members.map(String.init).joined(separator: ", "))")
        print("verify: " + (verify.status == 0 ? "all \(members.count) replicas agree" : "FAILED\n" + verify.output))
        if violations.isEmpty && verify.status == 0 {
            print("no violations (seed \(seed))")
        } else {
            failed = true
            print("\(violations.count) violation(s) (seed \(seed); replay the faults with --seed \(seed)):")
            // Every rule that fired, then a few of each (one rule can fire thousands of times
            // and hide the others).
            let byRule = Dictionary(grouping: violations, by: \.rule)
            for rule in byRule.keys.sorted() { print("  \(rule): \(byRule[rule]!.count)") }
            for rule in byRule.keys.sorted() {
                for violation in byRule[rule]!.prefix(3) { print(violation) }
            }
            throw ExitCode(1)
        }
    }

    /// The cluster's voters and learners once healed, from `chorus-tools member list` on the
    /// leader, waiting until every member has the leader's last entry.
    func finalMembers(cluster: ChaosCluster, lab: Lab) throws -> [UInt64] {
        let deadline = Date().addingTimeInterval(60)
        var last = ""
        while Date() < deadline {
            let result = try runCommand("/usr/bin/timeout", ["15", "/usr/sbin/ip", "netns", "exec", lab.client, Binaries.tools, "member", "list"] + cluster.adminArguments)
            last = result.output
            // Member rows only: "  ID  role …" (the list also names endpoints that did not
            // answer, such as the host of a member removed during the run).
            let rows = result.output.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("  ") && UInt64($0.split(separator: " ").first ?? "") != nil }
            let members = rows.compactMap { UInt64($0.split(separator: " ").first ?? "") }
            if result.status == 0, !members.isEmpty, rows.allSatisfy({ $0.contains("(0 behind)") }) {
                return members.sorted()
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw ToolError("the members did not all catch up with the leader within 60 s:\n\(last)")
    }

    /// Progress lines go out at once (the summary is printed at the end).
    func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func workloadProcess(cluster: ChaosCluster, lab: Lab, arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", lab.client, Binaries.current, "chaos-workload", "--endpoints", cluster.endpoints.joined(separator: ","), "--ca", cluster.certificates.ca] + arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }
}
