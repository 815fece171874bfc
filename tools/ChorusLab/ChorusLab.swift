import ArgumentParser
import Foundation
import NIOCore

/// The lab's binary: benchmarks, the comparison with etcd, the fault-injection suite and the
/// helpers tests run. Apart from `chorus-tools` so that what an operator installs and reads
/// `--help` of holds only what keeps a cluster: nothing here is needed to run one.
@main
struct ChorusLab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-lab",
        abstract: "Benchmark Chorus (and etcd beside it), and run the fault-injection suite.",
        discussion: "The operator's tools are in `chorus-tools`.",
        subcommands: [Bench.self, Compare.self, FailoverProbe.self, CatchUpBench.self, LogBench.self, ChaosCommand.self, ChaosWorkload.self, SynthLog.self, LogWriter.self]
    )

    /// One event loop for every connection the lab opens, set before NIO's shared group
    /// exists: the load generator's callers run on it (see `LoadGenerator`).
    static func main() async {
        NIOSingletons.groupLoopCountSuggestion = 1
        // What the lab writes into data directories (synthetic logs, keys) is readable by its
        // user only, as the node's own files are.
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
