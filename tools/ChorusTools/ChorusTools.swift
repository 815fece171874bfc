import ArgumentParser

@main
struct ChorusTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "Inspect, benchmark and repair Chorus data directories.",
        subcommands: [StatusCommand.self, Dump.self, Replay.self, Compact.self, Verify.self, SnapshotCommand.self, LogBench.self, Bench.self, FailoverProbe.self, Compare.self, CatchUpBench.self, ChaosCommand.self, ChaosWorkload.self, SynthLog.self, LogWriter.self]
    )
}
