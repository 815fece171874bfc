import Foundation
import Synchronization
import Testing

/// Clusters whose nodes run in the test process end with the test that made them: once its
/// body has returned (or thrown), every such node is stopped and waited for, and the
/// cluster's files are removed. A test cannot await in a `defer` or a `deinit`, and nodes left
/// draining would run beside the next test of a serialized suite and hold their files open.
/// `TestCluster(placement: .inProcess)` refuses to start outside this trait.
struct StopsInProcessClusters: TestTrait, SuiteTrait, TestScoping {
    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        test.isSuite ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let clusters = InProcessClusters()
        do {
            try await InProcessClusters.$current.withValue(clusters) { try await function() }
        } catch {
            await clusters.end()
            throw error
        }
        await clusters.end()
    }
}

extension Trait where Self == StopsInProcessClusters {
    /// Stops the nodes a test ran in its process when it ends (`StopsInProcessClusters`).
    static var inProcessClusters: Self { Self() }
}

/// The in-process clusters of one test.
final class InProcessClusters: Sendable {
    @TaskLocal static var current: InProcessClusters?

    private let clusters = Mutex<[(nodes: InProcessNodes, root: String)]>([])

    func add(_ nodes: InProcessNodes, root: String) {
        clusters.withLock { $0.append((nodes, root)) }
    }

    /// Stops every node, waits for all, then removes the clusters' files (unless
    /// `CHORUS_KEEP_TEST_DATA` is set).
    func end() async {
        let ending = clusters.withLock { clusters in
            defer { clusters = [] }
            return clusters
        }
        for cluster in ending { await cluster.nodes.stopAll() }
        guard ProcessInfo.processInfo.environment["CHORUS_KEEP_TEST_DATA"] == nil else { return }
        for cluster in ending { try? FileManager.default.removeItem(atPath: cluster.root) }
    }
}
