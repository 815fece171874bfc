import Client
import Foundation

/// A 5-node Chorus cluster of real `chorus-node` processes (the binary next to this one),
/// for benchmarks that must kill and restart nodes. Removes its data when closed.
final class BenchCluster: @unchecked Sendable {
    let size: Int
    let host: String
    let basePort: Int
    let root: String
    let extraArguments: [String]
    private var processes: [Int: Process] = [:]
    private let lock = NSLock()

    init(size: Int = 5, host: String, basePort: Int, extraArguments: [String] = []) throws {
        self.size = size
        self.host = host
        self.basePort = basePort
        self.extraArguments = extraArguments
        root = NSTemporaryDirectory() + "chorus-bench-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    var ids: [Int] { Array(1...size) }
    func address(_ id: Int) -> String { "\(host):\(basePort + id - 1)" }
    var endpoints: [String] { ids.map(address) }

    static var nodeExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("chorus-node").path
    }

    func start(_ id: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.nodeExecutable)
        var arguments = ["run", "--id", "\(id)", "--listen", address(id), "--data-dir", "\(root)/node-\(id)", "--cluster-id", "bench"]
        for peer in ids { arguments += ["--peer", "\(peer)=\(address(peer))"] }
        process.arguments = arguments + extraArguments
        let log = "\(root)/node-\(id).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { processes[id] = process }
    }

    func startAll() throws {
        for id in ids { try start(id) }
    }

    func kill(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops every node and removes the data.
    func close() {
        let running = lock.withLock { processes.values.filter(\.isRunning) }
        for process in running { Foundation.kill(process.processIdentifier, SIGKILL) }
        for process in running { process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The leader's status once one is known to all running nodes.
    func waitForLeader(_ client: ChorusClient, within: Duration = .seconds(20)) async throws -> NodeStatus {
        let clock = ContinuousClock()
        let end = clock.now + within
        while clock.now < end {
            let statuses = await client.status().compactMap(\.status)
            if let leader = statuses.filter({ $0.role == "leader" }).max(by: { $0.term < $1.term }) { return leader }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolError("no leader within \(within)")
    }
}
