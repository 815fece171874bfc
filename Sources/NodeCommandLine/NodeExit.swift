import ArgumentParser
import Logging
import LogStore
import Node
import Projections
import Replica

/// How a node's end reads to whoever started it: the exit status of `chorus-node run`, which
/// a supervisor acts on (restart it, or not with this build on this data), and which a test
/// running a node in its own process checks the same way.
public enum NodeExit {
    /// EX_CONFIG: this build cannot apply the data directory's log or snapshot; it needs a
    /// newer one.
    public static let needsAnotherBuild: Int32 = 78

    /// The status a node that ended with `error` exits with, once the reason is said at
    /// critical level; nil for an error that has no status of its own (thrown on as it is).
    public static func status(of error: any Error, logger: Logger) -> Int32? {
        switch error {
        case is UnknownEntry, is BuildTooOld:
            // Said at critical level already.
            return needsAnotherBuild
        case is InvariantViolation:
            return InvariantViolation.exitStatus
        case is StorageFailure:
            // Said at critical level already, with what to fix.
            return StorageFailure.exitStatus
        case let error as NewerFormat:
            logger.critical("\(error)")
            return needsAnotherBuild
        case let error as LogStoreError:
            guard case .newerFormat = error else { return nil }
            logger.critical("\(error)")
            return needsAnotherBuild
        default:
            return nil
        }
    }
}

extension NodeOptions {
    /// The node these options describe, ready to run; a configuration it refuses is a usage
    /// error, as any other bad flag.
    public func node(logger: Logger, plantedBugs: PlantedNodeBugs) throws -> ChorusNode {
        do {
            return try ChorusNode(configuration: try configuration(plantedBugs: plantedBugs), logger: logger)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }
}
