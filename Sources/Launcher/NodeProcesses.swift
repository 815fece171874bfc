import Foundation
import Synchronization

/// Child processes by key (a node number, or a host in the fault-injection lab), each writing
/// to a log file that is appended to, never truncated: a killed node's last words are
/// evidence. Start, signal, kill, stop and wait, the same way for every harness.
public final class NodeProcesses: Sendable {
    private let processes = Mutex<[Int: Process]>([:])

    public init() {}

    /// Starts `executable` as `key`, its output appended to `log`; `environment` adds variables.
    @discardableResult
    public func launch(_ key: Int, executable: String, arguments: [String], environment: [String: String] = [:], log: String) throws -> Process {
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
        try handle.close()
        processes.withLock { $0[key] = process }
        return process
    }

    public func process(_ key: Int) -> Process? { processes.withLock { $0[key] } }

    public func isRunning(_ key: Int) -> Bool { process(key)?.isRunning ?? false }

    public var allExited: Bool { processes.withLock { $0.values.allSatisfy { !$0.isRunning } } }

    /// Sends `number` to `key` if it runs, without waiting (SIGHUP, SIGSTOP, SIGCONT).
    public func signal(_ key: Int, _ number: Int32) {
        guard let process = process(key), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, number)
    }

    /// SIGKILL, and wait until it is gone: it gets no chance to flush or say goodbye.
    public func kill(_ key: Int) {
        guard let process = process(key), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM (continuing it first if stopped), and wait: a graceful stop.
    public func stop(_ key: Int) {
        guard let process = process(key), process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
        process.terminate()
        process.waitUntilExit()
    }

    /// `number` (SIGTERM by default) to every running process at once, stopped ones continued
    /// first, then waits for all.
    public func stopAll(with number: Int32 = SIGTERM) {
        let running = processes.withLock { $0.values.filter(\.isRunning) }
        for process in running {
            Foundation.kill(process.processIdentifier, SIGCONT)
            Foundation.kill(process.processIdentifier, number)
        }
        for process in running { process.waitUntilExit() }
    }

    /// Waits for `key` to exit on its own; whether a signal ended it, and its status. Throws
    /// when it still runs after `within`.
    public func waitForExit(_ key: Int, within: Duration) async throws -> (signaled: Bool, status: Int32) {
        let clock = ContinuousClock()
        let end = clock.now + within
        guard let process = process(key) else { throw LauncherError("process \(key) was never started") }
        while process.isRunning {
            guard clock.now < end else { throw LauncherError("process \(key) still runs after \(within)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (process.terminationReason == .uncaughtSignal, process.terminationStatus)
    }

    /// `key`'s resident memory in bytes, from /proc (Linux).
    public func residentBytes(_ key: Int) -> Int? {
        guard let pid = process(key)?.processIdentifier,
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }
}

extension NodeProcesses {
    /// Runs `executable` to completion (a tool, a node meant to refuse its flags); its exit
    /// status and its output, stdout and stderr together.
    public static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read before waiting: a child that fills the pipe would never exit.
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

public struct LauncherError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The `chorus-node` binary built beside a running executable (tests, tools, the node itself).
public enum NodeBinary {
    /// `chorus-node` in the directory of `executable`, or of any directory above it (a test
    /// bundle lives deeper than the products).
    public static func beside(_ executable: String = CommandLine.arguments[0]) -> String {
        var url = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("chorus-node")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/chorus-node").path
    }
}
