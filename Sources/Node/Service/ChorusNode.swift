import Logging
import ServiceLifecycle

/// A running Chorus node: the data directory, the replica loop, the peer links, a gRPC server
/// for clients and one for peers, composed as a `ServiceGroup` of their own. The node is a
/// `Service` itself and inherits its graceful shutdown from the group that runs it (SIGTERM or
/// SIGINT in `chorus-node run`). SIGKILL loses nothing acknowledged, since nothing is
/// acknowledged before it is fsynced on a majority.
public struct ChorusNode: Service {
    public let configuration: NodeConfiguration
    let logger: Logger
    /// Who the members are and where they are reached, from the log.
    public let directory: MemberDirectory

    public init(configuration: NodeConfiguration, logger: Logger) throws {
        try configuration.validate()
        directory = MemberDirectory(flags: configuration.flagAddresses)
        var configuration = configuration
        configuration.directory = directory
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let loops = NodeLoops(configuration)
        // After every service has ended: none of them may meet a loop already shut down.
        defer { loops.shutdown() }
        let node = try NodeAssembly(configuration: configuration, directory: directory, loops: loops, logger: logger)
        try await node.run()
    }
}
