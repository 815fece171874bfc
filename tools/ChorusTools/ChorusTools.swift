import ArgumentParser
import Foundation
import ToolSupport

@main
struct ChorusTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "The operator's tools: inspect, back up, restore, repair and reshape a Chorus cluster and its data directories.",
        discussion: "Benchmarks, the fault-injection suite and test helpers are in `chorus-lab`.",
        subcommands: [StatusCommand.self, CertsCommand.self, Dump.self, Replay.self, Compact.self, BackupCommand.self, RestoreCommand.self, Recover.self, Verify.self, SnapshotCommand.self, MemberCommand.self, TransferLeaderCommand.self]
    )

    static func main() async {
        await ToolMain.run(Self.self)
    }
}
