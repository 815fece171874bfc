import ArgumentParser
import Foundation
import ToolSupport

/// The lab's binary: benchmarks, the comparison with etcd, the fault-injection suite and the
/// helpers tests run. Apart from `chorus-tools` so that what an operator installs and reads
/// `--help` of holds only what keeps a cluster: nothing here is needed to run one.
@main
struct ChorusLab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-lab",
        abstract: "Benchmark Chorus (and etcd beside it), and run the fault-injection suite.",
        discussion: "The operator's tools are in `chorus-tools`.",
        subcommands: [Bench.self, Compare.self, BareServer.self, FailoverProbe.self, CatchUpBench.self, LogBench.self, ChaosCommand.self, ChaosWorkload.self, SynthLog.self, LogWriter.self]
    )

    static func main() async {
        await ToolMain.run(Self.self)
    }
}
