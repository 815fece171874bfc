import API
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Raft
import Synchronization

/// Outgoing Raft traffic: one long-lived client stream per peer, fed from a bounded queue.
/// When a peer is down its queue drops the oldest messages (Raft resends what matters) and
/// the link reconnects with backoff.
final class PeerLinks: MessageSender {
    let links: [NodeID: PeerLink]

    init(configuration: NodeConfiguration, logger: Logger) {
        var links: [NodeID: PeerLink] = [:]
        for (id, address) in configuration.members where id != configuration.id {
            links[id] = PeerLink(peer: id, address: address, clusterID: configuration.clusterID, logger: logger)
        }
        self.links = links
    }

    func send(_ messages: [Message]) {
        guard !messages.isEmpty else { return }
        var byPeer: [NodeID: [Chorus_V1_RaftMessage]] = [:]
        for message in messages {
            byPeer[message.to, default: []].append(MessageCoding.encode(message))
        }
        for (peer, batch) in byPeer {
            links[peer]?.enqueue(batch)
        }
    }

    /// Runs every link until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for link in links.values {
                group.addTask { await link.run() }
            }
        }
    }
}

final class PeerLink: Sendable {
    let peer: NodeID
    let address: PeerAddress
    let clusterID: String
    let logger: Logger
    /// Most messages held for a peer that is not reading them.
    static let queueLimit = 4096

    private let queue = Mutex<[Chorus_V1_RaftMessage]>([])
    private let signal: AsyncStream<Void>
    private let signalContinuation: AsyncStream<Void>.Continuation

    init(peer: NodeID, address: PeerAddress, clusterID: String, logger: Logger) {
        self.peer = peer
        self.address = address
        self.clusterID = clusterID
        self.logger = logger
        (signal, signalContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func enqueue(_ batch: [Chorus_V1_RaftMessage]) {
        queue.withLock { queue in
            queue += batch
            if queue.count > Self.queueLimit { queue.removeFirst(queue.count - Self.queueLimit) }
        }
        signalContinuation.yield()
    }

    private func drain() -> [Chorus_V1_RaftMessage] {
        queue.withLock { queue in
            defer { queue = [] }
            return queue
        }
    }

    func run() async {
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: address.host, port: address.port),
                transportSecurity: .plaintext,
                config: .defaults { $0.backoff = .init(initial: .milliseconds(50), max: .milliseconds(500), multiplier: 1.6, jitter: 0.2) }
            )
            try await withGRPCClient(transport: transport) { client in
                let stub = Chorus_V1_Peer.Client(wrapping: client)
                var backoff = Duration.milliseconds(20)
                while !Task.isCancelled {
                    do {
                        _ = try await stub.stream(requestProducer: { writer in
                            var iterator = self.signal.makeAsyncIterator()
                            while !Task.isCancelled {
                                let batch = self.drain()
                                if !batch.isEmpty {
                                    try await writer.write(.with { $0.clusterID = self.clusterID; $0.messages = batch })
                                }
                                guard await iterator.next() != nil else { return }
                            }
                        })
                    } catch {
                        logger.debug("stream to peer \(peer) at \(address) ended: \(error)")
                    }
                    // Whatever was queued while the peer was away is stale; Raft resends.
                    _ = drain()
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .milliseconds(500))
                }
            }
        } catch {
            logger.error("peer link to \(peer) at \(address) failed: \(error)")
        }
    }
}
