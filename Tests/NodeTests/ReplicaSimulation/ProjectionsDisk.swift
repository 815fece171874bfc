import Foundation
import LMDB
import Synchronization

/// The disk under a node's projections (`state/`, real LMDB), failing when the seed says:
/// a write commit there meets a full file system or an I/O error, as LMDB reports either.
/// LMDB aborts the transaction, so nothing of the batch reaches the tables; the node must
/// stop saying which, and its next start rebuilds the projections from the log's snapshot
/// and applies the log again (the node records the failure, `DataDirectory.markDiskFailed`).
///
/// The faults come from the test build's `DiskFault.decide`, so the commits that fail are
/// the running node's own: applying a batch (and the cluster version it raises), installing
/// a leader's snapshot. A node's start (opening or rebuilding the projections) is not faulted.
final class ProjectionsDisk: Sendable {
    enum Fault: String, Sendable {
        case full = "projections full"
        case ioError = "projections ioError"
    }

    private struct State {
        var random: SplitMix
        var rate: Double
        var faults: [Fault: Int] = [:]
        /// The fault that stopped the process running on this disk, if any.
        var failed: Fault?
    }

    private let state: Mutex<State>
    /// The node's `state/` directory.
    let directory: String

    init(directory: String, seed: UInt64, rate: Double) {
        self.directory = directory
        state = Mutex(State(random: SplitMix(state: seed ^ 0x7374_6174), rate: rate))
    }

    /// From now on the node's commits there may fail; the process that runs on it is new.
    func attach() {
        state.withLock { $0.failed = nil }
        #if DEBUG
        DiskFault.decide(under: directory) { [self] in decide() }
        #endif
    }

    /// The process is gone: its commits no longer reach this disk.
    func detach() {
        #if DEBUG
        DiskFault.decide(under: directory, nil)
        #endif
    }

    /// Whether the node recorded the failure as it stopped, so that its next start rebuilds
    /// the projections (`DataDirectory.markDiskFailed`). After an I/O error it does; on a
    /// full file system the record is a write too and may fail, and the node starts from the
    /// projections as it left them: either, by the seed.
    func recordsFailure(_ fault: Fault) -> Bool {
        fault == .ioError || state.withLock { $0.random.chance(0.5) }
    }

    /// The faults stop for good.
    func heal() { state.withLock { $0.rate = 0 } }

    var failed: Fault? { state.withLock { $0.failed } }
    var faults: [Fault: Int] { state.withLock { $0.faults } }

    /// Whether this commit fails, and with which errno. Once one failed, every later one does:
    /// the process is stopping.
    private func decide() -> Int32? {
        state.withLock { state in
            if let failed = state.failed { return failed == .full ? ENOSPC : EIO }
            guard state.random.chance(state.rate) else { return nil }
            let fault: Fault = state.random.chance(0.5) ? .full : .ioError
            state.faults[fault, default: 0] += 1
            state.failed = fault
            return fault == .full ? ENOSPC : EIO
        }
    }
}
