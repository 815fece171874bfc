import Foundation
import Launcher

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
    static var node: String { NodeBinary.beside(tools) }
}
