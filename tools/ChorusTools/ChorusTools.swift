import ArgumentParser

@main
struct ChorusTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "Inspect, benchmark and repair Chorus data directories.",
        subcommands: [LogBench.self, SendBench.self, LogWriter.self]
    )
}
