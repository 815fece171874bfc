import ArgumentParser
import Foundation
import NIOCore

/// How both tool binaries start: one event loop for every connection they open (set before
/// NIO's shared group exists; the lab's load generator runs its callers on it), files they
/// write readable by their user only (as the node's own are), and a failure said as ArgumentParser says it.
public enum ToolMain {
    public static func run<Root: AsyncParsableCommand>(_ root: Root.Type) async {
        NIOSingletons.groupLoopCountSuggestion = 1
        umask(0o077)
        do {
            var command = try root.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            root.exit(withError: error)
        }
    }
}
