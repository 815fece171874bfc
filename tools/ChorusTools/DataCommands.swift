import ArgumentParser
import Foundation
import LogStore
import Projections
import Raft
import SwiftProtobuf
import ToolSupport

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "First/last index, term, vote, snapshot, applied index, sizes and versions of a data directory.")
    @Argument(help: "The data directory.") var dir: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let data = try DataDir(dir)
        let hard = try data.log.hardState()
        let snapshot = try data.log.snapshotMetadata()
        var object: [String: Any] = [
            "first_index": try data.log.firstIndex(), "last_index": try data.log.lastIndex(), "entries": try data.log.count(),
            "term": hard.term, "vote": hard.vote, "commit": hard.commit,
            "snapshot_index": snapshot.index, "snapshot_term": snapshot.term,
            "log_bytes": try data.log.environment.usedBytes(),
            "snapshots_stored": data.snapshots.all().count,
            // Format 0: written before format versions (the same layout as format 1).
            "log_format": data.log.openedFormat ?? 0,
            "build_release": BuildVersions.release,
            "build_max_cluster_version": BuildVersions.current.maxClusterVersion,
        ]
        if let latest = data.snapshots.find(index: snapshot.index, term: snapshot.term) {
            object["snapshot_bytes"] = latest.size
        }
        if let state = data.state {
            object["applied_index"] = try state.lastApplied()
            object["state_bytes"] = try state.environment.usedBytes()
            object["digest"] = try state.digest()
            object["state_format"] = state.openedFormat ?? 0
            object["cluster_version"] = try state.clusterVersion()
        }
        // The same check a node runs before it starts.
        let problems = try data.log.problems(maxValue: MessageLimits().maxValue, entryKinds: BuildVersions.entryKinds)
        object["problems"] = problems
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for key in object.keys.sorted() where key != "problems" {
                print("\(key.padding(toLength: 15, withPad: " ", startingAt: 0)) \(object[key]!)")
            }
            print("problems        \(problems.isEmpty ? "none" : "")")
            for problem in problems { print("  \(problem)") }
        }
    }
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print log entries: index, term, kind and the decoded command.")
    @Argument(help: "The data directory.") var dir: String
    @Option(help: "First index.") var from: UInt64?
    @Option(help: "Last index.") var to: UInt64?
    @Flag(help: "One JSON object per line.") var json = false
    @Flag(help: "Keep printing new entries as they are appended.") var follow = false

    func run() throws {
        let data = try DataDir(dir)
        var next = try from ?? data.log.firstIndex()
        while true {
            let last = try to ?? data.log.lastIndex()
            while next <= last {
                let entries = try data.log.entries(from: next, through: min(last, next + 1023))
                guard let final = entries.last else { break }
                for entry in entries { print(describe(entry)) }
                next = final.index + 1
            }
            guard follow, to == nil || next <= to! else { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    func describe(_ entry: LogEntry) -> String {
        let kind = entry.kind == 1 ? "configuration" : (entry.payload.isEmpty ? "no-op" : "command")
        var command: Any = NSNull()
        var text = ""
        if kind == "command" {
            if var decoded = try? Command(serializedBytes: entry.payload) {
                if case var .createAccount(account) = decoded.kind {
                    // Hashes of passwords stay out of dumps that get pasted into tickets.
                    account.passwordHash = Data()
                    account.salt = Data()
                    decoded.kind = .createAccount(account)
                }
                text = decoded.textFormatString().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
                command = (try? JSONSerialization.jsonObject(with: decoded.jsonUTF8Data())) ?? NSNull()
            } else {
                text = "<undecodable \(entry.payload.count) bytes>"
            }
        }
        if json {
            let object: [String: Any] = ["index": entry.index, "term": entry.term, "kind": kind, "command": command]
            return String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        }
        return "\(entry.index)\t\(entry.term)\t\(kind)\t\(text)"
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rebuild the projections from the log into a fresh environment; print entries/s and the digest.")
    @Argument(help: "The data directory.") var dir: String
    @Option(help: "Stop at this index (default: the last committed).") var to: UInt64?
    @Option(help: "Keep the rebuilt projections in this directory (default: a scratch one).") var into: String?

    func run() throws {
        let data = try DataDir(dir)
        let hard = try data.log.hardState()
        let applied = try data.state?.lastApplied() ?? 0
        let last = try data.log.lastIndex()
        let target = min(to ?? max(hard.commit, applied), last)
        func replay(into path: String) throws {
            let progress = ProgressBar("replay", total: Int(target))
            let clock = ContinuousClock()
            let start = clock.now
            let (state, count, base) = try Replayer.rebuild(at: path, through: target, from: [data], progress: progress)
            let elapsed = clock.now - start
            progress.finish()
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if base > 0 { print("started from the snapshot at index \(base)") }
            print("replayed \(count) entries to index \(target) in \(String(format: "%.2f", seconds)) s (\(Int(Double(count) / max(seconds, 1e-9))) entries/s)")
            print("digest \(try state.digest())")
        }
        if let into { try replay(into: into) } else { try Replayer.withScratch(replay) }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that replicas agree: logs on their common committed prefix, projections replayed to the same index.")
    @Argument(help: "Two or more data directories.") var dirs: [String]

    func run() throws {
        guard dirs.count >= 2 else { throw ValidationError("give at least two data directories") }
        let replicas = try dirs.map(DataDir.init)
        var problems: [String] = []

        // 1. Logs agree on the prefix every replica has committed.
        let common = try replicas.map { try min($0.log.hardState().commit, $0.log.lastIndex()) }.min() ?? 0
        let first = try replicas.map { try $0.log.firstIndex() }.max() ?? 1
        let progress = ProgressBar("logs", total: Int(common))
        var index = first
        while index <= common {
            let upper = min(common, index + 1023)
            let batches = try replicas.map { try $0.log.entries(from: index, through: upper) }
            for offset in 0..<batches[0].count {
                let reference = batches[0][offset]
                for (n, batch) in batches.enumerated().dropFirst() where offset >= batch.count || batch[offset] != reference {
                    problems.append("log: \(dirs[n]) differs from \(dirs[0]) at index \(reference.index)")
                }
            }
            if !problems.isEmpty { break }
            index = upper + 1
            progress.update(Int(upper))
        }
        progress.finish()

        // 2. Each stored projection equals the log replayed to its applied index.
        if problems.isEmpty {
            for (n, replica) in replicas.enumerated() {
                guard let state = replica.state else { continue }
                let applied = try state.lastApplied()
                try Replayer.withScratch { scratch in
                    let reference = try Replayer.rebuild(at: scratch, through: applied, from: replicas).state
                    if try reference.digest() != state.digest() {
                        problems.append(contentsOf: try Self.difference(expected: reference, actual: state, name: dirs[n], index: applied))
                    }
                }
            }
        }
        if problems.isEmpty {
            print("\(replicas.count) replicas agree: logs up to index \(common), projections match their logs")
        } else {
            for problem in problems { print(problem) }
            throw ExitCode(1)
        }
    }

    /// The first differing row of each table that differs.
    static func difference(expected: ChatState, actual: ChatState, name: String, index: UInt64) throws -> [String] {
        var found: [String] = []
        for table in ChatState.tableNames {
            var a: [([UInt8], [UInt8])] = []
            var b: [([UInt8], [UInt8])] = []
            try expected.forEachRow(in: table) { a.append(($0, $1)) }
            try actual.forEachRow(in: table) { b.append(($0, $1)) }
            for i in 0..<max(a.count, b.count) {
                let left = i < a.count ? a[i] : nil
                let right = i < b.count ? b[i] : nil
                if left?.0 == right?.0 && left?.1 == right?.1 { continue }
                let show = { (row: ([UInt8], [UInt8])?) in row.map { ChatState.describeRow(table: table, key: $0.0, value: $0.1) } ?? "(no row)" }
                found.append("projection of \(name) at index \(index), table \(table): the log gives \(show(left)); the replica has \(show(right))")
                break
            }
        }
        return found
    }
}
