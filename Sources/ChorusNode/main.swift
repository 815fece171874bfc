import ArgumentParser
import Dispatch
import Foundation
import Launcher
import Logging
import NodeCommandLine
import ServiceLifecycle

/// `chorus-node`: the Chorus daemon.
@main
struct ChorusNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-node",
        abstract: "Run a Chorus node, or a local cluster of them.",
        subcommands: [Run.self, LocalClusterCommand.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run one node of a cluster.")

    @OptionGroup var options: NodeOptions

    func run() async throws {
        // Data directories hold password and session hashes: whatever the node creates is
        // readable by its user only, whatever the caller's umask.
        umask(0o077)
        let logger = try options.logger()
        let node = try options.node(logger: logger, plantedBugs: .fromProcessEnvironment)
        // The node also ends by itself (when the cluster removed it): a normal exit.
        var services = ServiceGroupConfiguration(services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger)
        services.gracefulShutdownSignals = [.sigterm, .sigint]
        do {
            try await ServiceGroup(configuration: services).run()
        } catch {
            guard let status = NodeExit.status(of: error, logger: logger) else { throw error }
            throw ExitCode(status)
        }
    }
}

struct LocalClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "local-cluster", abstract: "Start a cluster on loopback and watch its leader.")

    @Option(help: "Number of nodes.") var nodes: Int = 5
    @Option(help: "Loopback address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port of node 1; node N listens on base + N - 1.") var basePort: Int = 7001
    @Option(help: "Where the nodes keep their data.") var dataDir: String = "data"
    @Flag(help: "Run plaintext (no certificates); every node warns at start.") var insecure = false
    @Flag(help: "Start again any node that dies (SIGKILL, a crash); one that stops cleanly stays down.") var restart = false
    @Argument(parsing: .postTerminator, help: "Options after `--` go to every node's `run` (e.g. `-- --account-creations-per-minute 1000`).")
    var nodeOptions: [String] = []

    func run() async throws {
        // Data directories hold password and session hashes: whatever the node creates is
        // readable by its user only, whatever the caller's umask.
        umask(0o077)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let cluster = LocalCluster(size: nodes, host: host, basePort: basePort, dataDirectory: dataDir, executable: executable,
                                   extraArguments: nodeOptions, insecure: insecure, restart: restart)
        // Ctrl-C or SIGTERM stops the watcher, which then stops every node with SIGTERM.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let task = Task { try await cluster.run() }
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        do {
            try await task.value
        } catch is CancellationError {}
    }
}
