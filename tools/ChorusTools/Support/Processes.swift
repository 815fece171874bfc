import Foundation

/// Child processes by id (node number), each writing to its own log file: what the
/// benchmark and fault-injection clusters start, signal and kill.
final class ProcessGroup: @unchecked Sendable {
    private var processes: [Int: Process] = [:]
    private let lock = NSLock()

    /// Starts `executable` as member `id`, appending its output to `log`.
    func launch(_ id: Int, executable: String, arguments: [String], environment: [String: String] = [:], log: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        lock.withLock { processes[id] = process }
    }

    func isRunning(_ id: Int) -> Bool { lock.withLock { processes[id]?.isRunning ?? false } }

    /// Sends `signal` to member `id` if it runs; SIGKILL also waits for it to be gone.
    func signal(_ id: Int, _ signal: Int32) {
        guard let process = lock.withLock({ processes[id] }), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        if signal == SIGKILL { process.waitUntilExit() }
    }

    /// Sends `signal` to every running member and waits for all of them to exit.
    func stopAll(with signal: Int32) {
        let running = lock.withLock { processes.values.filter(\.isRunning) }
        for process in running { Foundation.kill(process.processIdentifier, signal) }
        for process in running { process.waitUntilExit() }
    }
}

/// Runs a command to completion; its exit status and its output (stdout and stderr).
@discardableResult
func runCommand(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// This `chorus-tools` binary, and binaries built beside it.
enum Binaries {
    static var tools: String { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path }
    static var node: String {
        URL(fileURLWithPath: tools).deletingLastPathComponent().appendingPathComponent("chorus-node").path
    }
}
