import Foundation
import Launcher

/// Runs a command to completion; its exit status and its output (stdout and stderr).
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    try NodeProcesses.run(executable, arguments)
}

/// The binaries of one build: this one, and those built beside it. The lab runs the
/// operator's tools (`verify`, `member list`) as an operator would, and itself again in a
/// client namespace (`chaos-workload`).
public enum Binaries {
    /// This binary.
    public static var current: String { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path }
    /// `chorus-node` beside this binary.
    public static var node: String { NodeBinary.beside(current) }
    /// `chorus-tools`, the operator's tools, beside this binary.
    public static var tools: String { beside("chorus-tools") }
    /// `chorus`, the terminal client, beside this binary.
    public static var cli: String { beside("chorus") }

    static func beside(_ name: String) -> String {
        URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
