import ArgumentParser
import Foundation
import NIOCore

@main
struct ChorusTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "The operator's tools: inspect, back up, restore, repair and reshape a Chorus cluster and its data directories.",
        discussion: "Benchmarks, the fault-injection suite and test helpers are in `chorus-lab`.",
        subcommands: [StatusCommand.self, CertsCommand.self, Dump.self, Replay.self, Compact.self, BackupCommand.self, RestoreCommand.self, Recover.self, Verify.self, SnapshotCommand.self, MemberCommand.self, TransferLeaderCommand.self]
    )

    /// One event loop is plenty for the few connections an operator's command opens; set
    /// before NIO's shared group exists.
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
