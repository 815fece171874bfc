import Foundation
import Logging
import Node
import NodeCommandLine
import ServiceLifecycle
import Synchronization

/// Nodes run inside the test process: the same `chorus-node run` command line a process
/// would get (`Launcher.NodeCommand`), parsed by the same `NodeOptions`, and the node run in a
/// `ServiceGroup` as the binary runs it, with no process around it. Starting one costs no
/// exec and no loading of a 150 MB debug binary and its runtime.
///
/// What needs a process stays with `NodeProcesses`: SIGKILL, signals, crash points and the
/// injected disk faults (read once per process from its environment), and exit statuses.
final class InProcessNodes: Sendable {
    private struct Running {
        let group: ServiceGroup
        let ended: Task<Int32, Never>
        let finished: Finished
    }

    /// Set by the node's task as it returns, for the tests that poll with a deadline.
    private final class Finished: Sendable {
        private let done = Atomic(false)
        func set() { done.store(true, ordering: .releasing) }
        var isSet: Bool { done.load(ordering: .acquiring) }
    }

    private let nodes = Mutex<[Int: Running]>([:])

    /// Starts node `key` from its `run` command line (`arguments`, "run" first); its log
    /// lines are appended to `log`. `environment` is what the process would have had added:
    /// the planted bugs a debug build reads.
    func launch(_ key: Int, arguments: [String], environment: [String: String], log: String) throws {
        let options = try NodeOptions.parse(Array(arguments.drop { $0 == "run" }))
        let file = try LogFile(path: log)
        let logger = try options.logger { format, label in
            format == .text ? TextFileLogHandler(label: label, file: file) : format.handler(label: label)
        }
        let node = try options.node(logger: logger, plantedBugs: .fromEnvironment(environment))
        var configuration = ServiceGroupConfiguration(services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger)
        configuration.gracefulShutdownSignals = []
        let group = ServiceGroup(configuration: configuration)
        let finished = Finished()
        let ended = Task<Int32, Never> {
            defer { finished.set() }
            do {
                try await group.run()
                return 0
            } catch {
                if let status = NodeExit.status(of: error, logger: logger) { return status }
                // What `chorus-node run` prints before exiting 1.
                logger.error("Error: \(error)")
                return 1
            }
        }
        nodes.withLock { $0[key] = Running(group: group, ended: ended, finished: finished) }
    }

    /// The node's graceful stop, as on SIGTERM; waits until it has ended.
    func stop(_ key: Int) async {
        guard let running = nodes.withLock({ $0[key] }) else { return }
        await running.group.triggerGracefulShutdown()
        _ = await running.ended.value
    }

    /// Every node at once, then waits for all.
    func stopAll() async {
        let running = nodes.withLock { Array($0.values) }
        for node in running { await node.group.triggerGracefulShutdown() }
        for node in running { _ = await node.ended.value }
    }

    func isRunning(_ key: Int) -> Bool {
        guard let running = nodes.withLock({ $0[key] }) else { return false }
        return !running.finished.isSet
    }

    /// Waits for node `key` to end by itself; its exit status, as `chorus-node run` gives it.
    func waitForExit(_ key: Int, within: Duration) async throws -> Int32 {
        guard let running = nodes.withLock({ $0[key] }) else { throw TestFailure("node \(key) was never started") }
        let clock = ContinuousClock()
        let end = clock.now + within
        while !running.finished.isSet {
            guard clock.now < end else { throw TestFailure("node \(key) still runs after \(within)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return await running.ended.value
    }
}

/// A log file that every handler of one node appends lines to, whole, in order.
final class LogFile: Sendable {
    private let handle: Mutex<FileHandle>

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        self.handle = Mutex(handle)
    }

    func write(_ line: String) {
        handle.withLock { $0.write(Data(line.utf8)) }
    }
}

/// The node's text lines, as `StreamLogHandler` writes them on standard error, into its log
/// file instead.
struct TextFileLogHandler: LogHandler {
    let label: String
    let file: LogFile
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        file.write("\(Date()) \(event.level) \(label):\(fields) [\(event.source)] \(event.message)\n")
    }
}
