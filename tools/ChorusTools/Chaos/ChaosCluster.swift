import Foundation

/// Chorus nodes as hosts of the lab: each `chorus-node` runs inside its namespace (through
/// `ip netns exec`, which execs it, so the process we hold is the node itself).
final class ChaosCluster: @unchecked Sendable {
    let lab: Lab
    let root: String
    let environment: [String: String]
    let port = 7000
    private var processes: [Int: Process] = [:]
    private var paused: Set<Int> = []
    private let lock = NSLock()

    init(lab: Lab, root: String, environment: [String: String]) {
        self.lab = lab
        self.root = root
        self.environment = environment
    }

    var ids: [Int] { Array(1...lab.nodes) }
    func endpoint(_ id: Int) -> String { "\(lab.address(node: id)):\(port)" }
    var endpoints: [String] { ids.map(endpoint) }
    func dataDirectory(_ id: Int) -> String { "\(root)/node-\(id)" }

    static var nodeExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("chorus-node").path
    }

    func start(_ id: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        var arguments = ["netns", "exec", lab.namespace(node: id), Self.nodeExecutable, "run",
                         "--id", "\(id)", "--listen", endpoint(id), "--data-dir", dataDirectory(id), "--cluster-id", "chaos",
                         "--password-iterations", "1000", "--snapshot-interval", "2000", "--snapshot-keep", "500"]
        for peer in ids { arguments += ["--peer", "\(peer)=\(endpoint(peer))"] }
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let log = "\(root)/node-\(id).log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock {
            processes[id] = process
            paused.remove(id)
        }
    }

    func isRunning(_ id: Int) -> Bool { lock.withLock { processes[id]?.isRunning ?? false } }
    var running: [Int] { ids.filter(isRunning) }

    func kill(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        lock.withLock { _ = paused.remove(id) }
    }

    func pause(_ id: Int) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
        lock.withLock { _ = paused.insert(id) }
    }

    func resumeAll() {
        let stopped = lock.withLock { paused.compactMap { processes[$0] } }
        for process in stopped where process.isRunning { Foundation.kill(process.processIdentifier, SIGCONT) }
        lock.withLock { paused = [] }
    }

    /// Restarts every node that is down.
    func restartDead() throws {
        for id in ids where !isRunning(id) { try start(id) }
    }

    /// SIGTERM to all (continuing paused ones first), then wait.
    func stopAll() {
        resumeAll()
        let all = lock.withLock { Array(processes.values) }
        for process in all where process.isRunning { process.terminate() }
        for process in all { process.waitUntilExit() }
    }

    func killAll() {
        resumeAll()
        let all = lock.withLock { Array(processes.values) }
        for process in all where process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        for process in all { process.waitUntilExit() }
    }
}
