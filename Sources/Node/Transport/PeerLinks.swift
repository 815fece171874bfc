import API
import ClusterPKI
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Mailbox
import NIOPosix
import Projections
import Raft
import Replica
import Synchronization

/// Outgoing Raft traffic: one long-lived client stream per peer, fed from a bounded queue.
/// When a peer is down its queue drops the oldest messages (Raft resends what matters) and
/// the link reconnects with backoff.
///
/// The set of links follows the configuration: the replica loop tells it of every new one
/// (`configurationChanged`) before any message for a member added or moved is sent, and it
/// updates the member directory, then opens and closes links.
final class PeerLinks: MessageSender {
    private let links = Mutex<[NodeID: PeerLink]>([:])
    /// New links for `run` to start. Unbounded, but it holds at most one link per membership
    /// change, and changes are one at a time.
    private let additions: AsyncStream<PeerLink>
    private let added: AsyncStream<PeerLink>.Continuation
    private let make: @Sendable (NodeID, PeerAddress) -> PeerLink
    let id: NodeID
    /// Where the members are, as the log says.
    let directory: MemberDirectory
    /// What each peer's build applies: entries go only to peers that apply the cluster version.
    let versions: PeerVersions

    init(configuration: NodeConfiguration, clusterName: ClusterName, directory: MemberDirectory, incarnation: UInt64, certificates: CertificateFiles?, snapshots: SnapshotStore,
         removal: RemovalNotice, versions: PeerVersions, metrics: NodeMetrics, eventLoopGroup: MultiThreadedEventLoopGroup, logger: Logger) {
        id = configuration.id
        self.directory = directory
        self.versions = versions
        (additions, added) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        let security = configuration.tls?.mutualClientSecurity(reloading: certificates) ?? .plaintext
        make = { peer, address in
            PeerLink(peer: peer, address: address, clusterName: clusterName, incarnation: incarnation, security: security, snapshots: snapshots,
                     removal: removal, versions: versions, metrics: metrics, eventLoopGroup: eventLoopGroup, logger: logger)
        }
        // A node waiting to join knows no configuration yet: it answers the members the flags
        // name (the leader among them) until the log tells it who they are.
        let logged = directory.configuration
        let initial = logged.isEmpty ? configuration.members : Dictionary(uniqueKeysWithValues: logged.members.compactMap { member in
            directory.addresses(of: member).map { (member, $0.peer) }
        })
        for (peer, address) in initial where peer != id {
            add(peer, address)
        }
    }

    private func add(_ peer: NodeID, _ address: PeerAddress) {
        let link = make(peer, address)
        links.withLock { $0.updateValue(link, forKey: peer) }?.stop()
        added.yield(link)
    }

    /// The membership changed: the directory learns the members' addresses from it, and the
    /// links follow.
    func configurationChanged(_ configuration: ClusterConfiguration) {
        let (changed, removed) = directory.update(configuration)
        membersChanged(changed: changed, removed: removed)
    }

    /// Opens links to members that appeared or moved and closes those to members that left.
    func membersChanged(changed: [NodeID: MemberDirectory.Addresses], removed: [NodeID]) {
        for (peer, addresses) in changed where peer != id {
            if links.withLock({ $0[peer]?.address }) != addresses.peer { add(peer, addresses.peer) }
        }
        for peer in removed {
            links.withLock { $0.removeValue(forKey: peer) }?.stop()
        }
    }

    func send(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        let links = self.links.withLock { $0 }
        var byPeer: [NodeID: [Chorus_V1_RaftMessage]] = [:]
        var entries: [Index: Chorus_V1_RaftEntry] = [:]
        for var message in messages {
            // A peer whose build may not apply the cluster version gets no entry to misread
            // (`PeerVersions`), nor the commit index, which would have it apply what its own
            // log already holds; heartbeats still go, and its answers say what it runs.
            switch message.kind {
            case .snapshot, .append, .heartbeat:
                guard !versions.mayReplicate(to: message.to) else { break }
                switch message.kind {
                case let .append(_, _, entries, _) where entries.isEmpty == false: continue
                case let .append(prevIndex, prevTerm, entries, _): message.kind = .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: 0)
                case let .heartbeat(_, context): message.kind = .heartbeat(commit: 0, context: context)
                default: continue
                }
            default: break
            }
            if case .snapshot = message.kind {
                links[message.to]?.snapshots.offer(message)
                continue
            }
            byPeer[message.to, default: []].append(MessageCoding.encode(message, entries: &entries))
        }
        for (peer, batch) in byPeer {
            links[peer]?.enqueue(batch)
        }
    }

    /// Runs every link, those added later too, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await link in additions {
                group.addTask { await link.run() }
            }
        }
    }
}

final class PeerLink: Sendable {
    let peer: NodeID
    let address: PeerAddress
    let clusterName: ClusterName
    /// This node's data-directory incarnation, sent with every batch.
    let incarnation: UInt64
    /// Mutual TLS with this node's certificate, or plaintext when insecure.
    let security: HTTP2ClientTransport.Posix.TransportSecurity
    let logger: Logger
    let snapshots: SnapshotSender
    /// Told when the peer refuses this node, and why.
    let removal: RemovalNotice
    /// Says what this build applies on every batch; forgets what the peer said when a new
    /// stream to it opens (it may be another process now).
    let versions: PeerVersions
    let eventLoopGroup: MultiThreadedEventLoopGroup
    /// Most messages held for a peer that is not reading them.
    static let queueLimit = 4096

    /// Messages for the open stream. Full, the oldest go; with no stream open, none are kept:
    /// Raft resends what still matters, and a returning peer is not flooded with stale votes
    /// and heartbeats.
    private let queue = Mailbox<Chorus_V1_RaftMessage>(capacity: PeerLink.queueLimit, overflow: .dropOldest)
    private let streamOpen = Atomic<Bool>(false)
    private let batchesSent = Atomic<Int>(0)
    /// Set when the peer left the configuration (or moved): the link ends.
    private let stopped = Atomic<Bool>(false)

    func stop() {
        stopped.store(true, ordering: .relaxed)
        queue.finish()
        snapshots.stop()
    }

    init(peer: NodeID, address: PeerAddress, clusterName: ClusterName, incarnation: UInt64, security: HTTP2ClientTransport.Posix.TransportSecurity,
         snapshots: SnapshotStore, removal: RemovalNotice, versions: PeerVersions, metrics: NodeMetrics, eventLoopGroup: MultiThreadedEventLoopGroup, logger: Logger) {
        self.peer = peer
        self.removal = removal
        self.incarnation = incarnation
        self.security = security
        self.eventLoopGroup = eventLoopGroup
        self.address = address
        self.clusterName = clusterName
        self.versions = versions
        self.logger = logger
        self.snapshots = SnapshotSender(peer: peer, clusterName: clusterName, store: snapshots, metrics: metrics, logger: logger)
    }

    func enqueue(_ batch: [Chorus_V1_RaftMessage]) {
        guard streamOpen.load(ordering: .relaxed) else { return }
        queue.push(contentsOf: batch)
    }

    /// A batch, one request on the stream, stays under this many bytes of entries and
    /// snapshot data (but holds at least one message): the peer listener refuses requests of
    /// `NodeConfiguration.peerRequestLimit`, and a follower far behind is sent many full appends
    /// at once.
    static let batchBytes = 4 << 20

    static func payloadBytes(_ message: Chorus_V1_RaftMessage) -> Int {
        64 + message.append.entries.reduce(0) { $0 + 32 + $1.data.count } + message.snapshot.data.count
    }

    /// Runs the link until it is stopped or cancelled. A client that fails to start or fails
    /// as a whole is started again after a backoff (`LinkRestarts`): a link that gave up would
    /// leave the peer unreached until its address changed.
    func run() async {
        var restarts = LinkRestarts()
        while !Task.isCancelled && !stopped.load(ordering: .relaxed) {
            do {
                let ran = ContinuousClock.now
                try await runClient()
                guard !Task.isCancelled && !stopped.load(ordering: .relaxed) else { return }
                // The client stopped by itself: start another, at once if it ran a while.
                if ContinuousClock.now - ran > LinkRestarts.limit { restarts.succeeded() }
                let delay = restarts.failed()
                logger.warning("peer link to \(peer) at \(address): its client stopped; starting it again in \(delay)")
                try? await Task.sleep(for: delay)
            } catch {
                let delay = restarts.failed()
                logger.error("peer link to \(peer) at \(address) failed: \(error); starting it again in \(delay)")
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// One gRPC client to the peer, for as long as it runs.
    private func runClient() async throws {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: address.host, port: address.port),
            transportSecurity: security,
            config: .defaults {
                // A peer that comes back is reached within 100 ms (etcd's stream readers
                // retry as often): a follower restarted after a while is caught up that much
                // sooner, and an attempt to a peer still down costs a refused connect.
                $0.backoff = .init(initial: .milliseconds(20), max: .milliseconds(100), multiplier: 1.6, jitter: 0.2)
                // A peer that vanished without closing (power loss, partition) is noticed
                // within seconds, and the stream to it reopened when it is back.
                $0.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: true)
            },
            eventLoopGroup: eventLoopGroup
        )
        try await withGRPCClient(transport: transport) { client in
            let stub = Chorus_V1_Peer.Client(wrapping: client)
            await withDiscardingTaskGroup { group in
                // Reading snapshot files is blocking I/O: keep it off the event loop.
                group.addTask(executorPreference: globalConcurrentExecutor) { await self.snapshots.run(stub: stub) }
                await self.stream(stub: stub)
                // The stream ends only when the link stops or is cancelled; the snapshot sender
                // ends with its task (its queue stays, for a client started again).
                group.cancelAll()
            }
        }
    }

    /// Keeps one message stream open to the peer, reconnecting with backoff, until cancelled.
    private func stream(stub: Chorus_V1_Peer.Client<HTTP2ClientTransport.Posix>) async {
                var backoff = Duration.milliseconds(20)
                // The last refusal logged and when: a refused stream is retried every 500 ms,
                // and one line a minute says as much as a hundred.
                var lastRefusal: (message: String, at: ContinuousClock.Instant)?
                while !Task.isCancelled && !stopped.load(ordering: .relaxed) {
                    // What waited for a stream that was not there is stale now.
                    queue.removeAll()
                    versions.forget(peer)
                    streamOpen.store(true, ordering: .relaxed)
                    let advertisement = versions.advertisement
                    let before = batchesSent.load(ordering: .relaxed)
                    var refused = false
                    do {
                        _ = try await stub.stream(requestProducer: { writer in
                            // A batch, one request, stays under `batchBytes` (at least one message).
                            for await batch in self.queue.batches(maxWeight: Self.batchBytes, weight: Self.payloadBytes) {
                                try await writer.write(.with {
                                    $0.clusterID = self.clusterName.wire
                                    $0.messages = batch
                                    $0.senderIncarnation = self.incarnation
                                    $0.senderBuild = advertisement
                                })
                                self.batchesSent.add(1, ordering: .relaxed)
                            }
                        })
                    } catch let error as RPCError where error.code == .failedPrecondition || error.code == .permissionDenied {
                        // The peer will not hear this node: say why where an operator looks.
                        let now = ContinuousClock.now
                        if lastRefusal?.message != error.message || now - lastRefusal!.at > .seconds(60) {
                            logger.error("peer \(peer) at \(address) refuses this node: \(error.message)")
                            lastRefusal = (error.message, now)
                        }
                        refused = true
                        removal.refused(by: peer, reason: error.metadata[stringValues: RemovalNotice.key].first(where: { _ in true }))
                    } catch let error as RuntimeError where error.code == .clientIsStopped {
                        // The client under this stream is gone (its connections ended): `run`
                        // starts another.
                        logger.debug("stream to peer \(peer) at \(address) ended with its client: \(error)")
                        streamOpen.store(false, ordering: .relaxed)
                        return
                    } catch {
                        logger.debug("stream to peer \(peer) at \(address) ended: \(error)")
                    }
                    streamOpen.store(false, ordering: .relaxed)
                    let delivered = batchesSent.load(ordering: .relaxed) > before
                    if delivered && !refused { removal.accepted(by: peer) }
                    // A refusal is retried slowly: it is an operator's matter (or this node was
                    // removed), and each refused stream costs the peer a log line's worth of work.
                    backoff = delivered ? .milliseconds(20) : refused ? .milliseconds(500) : min(backoff * 2, .milliseconds(100))
                    try? await Task.sleep(for: backoff)
                }
    }
}
