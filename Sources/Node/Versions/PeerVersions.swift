import API
import Foundation
import Projections
import Raft
import Synchronization

/// What each peer's build applies, as it says on its peer stream, and the cluster version this
/// node has applied: the two facts that keep a mixed cluster from diverging.
///
/// - The leader raises the cluster version only when every member said it applies the new
///   one (`ClusterVersionFinalizer`).
/// - Once the version is above 1, a peer whose build applies less (a node downgraded, or
///   started from an older release) is refused: its stream ends with a sentence, and no entry
///   or snapshot is sent to it, so it can neither vote nor apply what it would misread. A
///   peer not heard from since its stream (re)opened gets no entries either until it says.
///
/// A release that predates cluster versions says nothing; it is taken to apply version 1.
public final class PeerVersions: Sendable {
    public struct Advertised: Sendable, Equatable {
        public var build: BuildVersions
        public var release: String
    }

    /// What each open stream from a peer said, by stream: a peer restarted on another build
    /// opens a new stream while the old one may linger (half-open until keepalive), and the
    /// older build must win until the old stream is gone.
    private let heard = Mutex<[NodeID: [UInt64: Advertised]]>([:])
    private let streams = Atomic<UInt64>(0)
    private let applied = Atomic<UInt32>(1)
    /// When each refused peer was last logged: a refused stream is retried every 500 ms.
    private let lastLogged = Mutex<[NodeID: ContinuousClock.Instant]>([:])
    /// What this node's own build applies, and says.
    public let build: BuildVersions

    /// What a leader does that must not overlap: raising the version reads the members and
    /// proposes; a member added in between could be a build that never said what it applies,
    /// and would receive the raise. One at a time.
    enum Change: Sendable { case raisingVersion, addingMember }
    private let change = Mutex<Change?>(nil)

    /// Starts `what` unless the other is under way; false if it is.
    func begin(_ what: Change) -> Bool {
        change.withLock { current in
            guard current == nil else { return false }
            current = what
            return true
        }
    }

    func end() {
        change.withLock { $0 = nil }
    }

    public init(build: BuildVersions, clusterVersion: UInt32) {
        self.build = build
        applied.store(clusterVersion, ordering: .relaxed)
    }

    /// The cluster version as of the entries this node applied.
    public var clusterVersion: UInt32 { applied.load(ordering: .relaxed) }

    func clusterVersionApplied(_ version: UInt32) {
        applied.store(version, ordering: .relaxed)
    }

    /// A name for a new inbound stream.
    func newStream() -> UInt64 {
        streams.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// A batch from `peer` on `stream` said what its build applies (nil: it said nothing, as
    /// releases before cluster versions). Returns the sentence to refuse it with when its
    /// build cannot apply the committed cluster version.
    func heard(from peer: NodeID, on stream: UInt64, _ advertised: Chorus_V1_BuildVersions?) -> String? {
        let value = advertised.map { Advertised(build: BuildVersions(maxClusterVersion: max(1, $0.maxClusterVersion)), release: $0.release) }
            ?? Advertised(build: .unadvertised, release: "")
        heard.withLock { $0[peer, default: [:]][stream] = value }
        let running = clusterVersion
        guard value.build.maxClusterVersion < running else { return nil }
        let release = value.release.isEmpty ? "a release before 0.3.0" : "release \(value.release)"
        return "node \(peer) runs \(release), which applies cluster versions up to \(value.build.maxClusterVersion); this cluster runs cluster version \(running): it is refused until it runs a build that applies \(running) (this node runs release \(BuildVersions.release))"
    }

    /// Whether a refusal of `peer` should be logged now (once a minute per peer).
    func shouldLogRefusal(of peer: NodeID) -> Bool {
        let now = ContinuousClock.now
        return lastLogged.withLock { logged in
            if let last = logged[peer], now - last < .seconds(60) { return false }
            logged[peer] = now
            return true
        }
    }

    /// A stream from `peer` ended: what was said on it no longer holds.
    func forget(_ peer: NodeID, stream: UInt64) {
        heard.withLock { heard in
            heard[peer]?[stream] = nil
            if heard[peer]?.isEmpty == true { heard[peer] = nil }
        }
    }

    /// A new stream to `peer` opened: it may be another process now, which says again.
    func forget(_ peer: NodeID) {
        heard.withLock { _ = $0.removeValue(forKey: peer) }
    }

    /// What `peer` said on its open streams: the oldest build among them, if heard since the
    /// last stream to it opened.
    public func advertised(by peer: NodeID) -> Advertised? {
        heard.withLock { $0[peer]?.values.min { $0.build.maxClusterVersion < $1.build.maxClusterVersion } }
    }

    /// Whether log entries and snapshots may go to `peer`: always at cluster version 1 (every
    /// build applies it); above, only to a peer heard to apply it.
    func mayReplicate(to peer: NodeID) -> Bool {
        let running = clusterVersion
        guard running > 1 else { return true }
        return advertised(by: peer).map { $0.build.maxClusterVersion >= running } ?? false
    }

    /// What this node says on each batch.
    var advertisement: Chorus_V1_BuildVersions {
        .with {
            $0.maxClusterVersion = build.maxClusterVersion
            $0.release = BuildVersions.release
        }
    }
}
