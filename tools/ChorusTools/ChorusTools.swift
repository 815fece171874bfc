import ArgumentParser

@main
struct ChorusTools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-tools",
        abstract: "Inspect, benchmark and repair Chorus data directories.",
        subcommands: [LogBench.self, LogWriter.self]
    )
}
