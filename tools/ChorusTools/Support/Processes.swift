import Foundation
import Launcher

/// Runs a command to completion; its exit status and its output (stdout and stderr).
@discardableResult
func runCommand(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    try NodeProcesses.run(executable, arguments)
}

/// This `chorus-tools` binary, and binaries built beside it.
enum Binaries {
    static var tools: String { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path }
    static var node: String { NodeBinary.beside(tools) }
}
