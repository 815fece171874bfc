import ArgumentParser
import Foundation
import NIOCore

@main
struct ChorusTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "Inspect, benchmark and repair Chorus data directories.",
        subcommands: [StatusCommand.self, CertsCommand.self, Dump.self, Replay.self, Compact.self, BackupCommand.self, RestoreCommand.self, Recover.self, Verify.self, SnapshotCommand.self, MemberCommand.self, TransferLeaderCommand.self, LogBench.self, Bench.self, FailoverProbe.self, Compare.self, CatchUpBench.self, ChaosCommand.self, ChaosWorkload.self, SynthLog.self, LogWriter.self]
    )

    /// One event loop for every connection the tools open, set before NIO's shared group
    /// exists: the load generator's callers run on it (see `LoadGenerator`).
    static func main() async {
        NIOSingletons.groupLoopCountSuggestion = 1
        // What the tools write into data directories (compacted logs, snapshots, keys) is
        // readable by its user only, as the node's own files are.
        umask(0o077)
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
