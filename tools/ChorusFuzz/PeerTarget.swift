import API
import Foundation
import Node
import Raft
import SwiftProtobuf

/// Peer traffic: the input is a `PeerBatch` as it arrives on a peer stream. Its messages are
/// decoded as the peer service decodes them and stepped into a three-server cluster that has
/// elected a leader and committed a few entries, while the servers keep talking to each other
/// honestly. Whatever arrives, no core may trap, and nothing a core asks to persist may break
/// the storage's rules (a gap in the log traps `MemoryStorage`, as it fails the real log).
enum PeerTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let batch = try? Chorus_V1_PeerBatch(serializedBytes: Array(input)) else { return }
        var cluster = MiniCluster()
        cluster.warmUp()
        for (n, encoded) in batch.messages.prefix(64).enumerated() {
            guard let message = try? MessageCoding.decode(encoded) else { continue }
            // A message for nobody here goes to server 1, which must refuse it.
            cluster.step(message, at: cluster.slot(of: message.to) ?? 0)
            cluster.deliver(rounds: 3)
            if n % 4 == 3 { cluster.tick() }
        }
        for _ in 0..<20 { cluster.tick() }
    }
}

/// Three cores on in-memory storage, delivering their own messages to each other at once.
/// Server N is at slot N - 1.
struct MiniCluster {
    var cores: [RaftCore] = []
    var storages: [MemoryStorage] = []
    var queue: [Raft.Message] = []
    var proposals = 0

    init() {
        let configuration = ClusterConfiguration(voters: [1, 2, 3])
        for id: NodeID in 1...3 {
            let storage = MemoryStorage(configuration: configuration)
            var options = RaftOptions(id: id, seed: 42)
            options.maxInflightMessages = 8
            storages.append(storage)
            cores.append(RaftCore(storage: storage, options: options))
        }
    }

    /// The slot of server `id`, if it is one of the three.
    func slot(of id: NodeID) -> Int? {
        (1...NodeID(cores.count)).contains(id) ? Int(id - 1) : nil
    }

    mutating func step(_ message: Raft.Message, at slot: Int) {
        _ = cores[slot].step(message)
    }

    /// Elects server 1 and commits a few entries.
    mutating func warmUp() {
        cores[0].campaign()
        deliver(rounds: 10)
        for n in 0..<3 { propose(n) }
        deliver(rounds: 10)
    }

    mutating func propose(_ n: Int) {
        for slot in cores.indices where cores[slot].isLeader {
            cores[slot].propose([Array("cmd-\(n)".utf8)])
        }
    }

    mutating func tick() {
        for slot in cores.indices { cores[slot].tick() }
        proposals += 1
        propose(proposals)
        deliver(rounds: 3)
    }

    /// Persists every ready and delivers what it sends, `rounds` times over; `sent` sees
    /// every message on its way.
    mutating func deliver(rounds: Int, sent: (Raft.Message) -> Void = { _ in }) {
        for _ in 0..<rounds {
            for slot in cores.indices where cores[slot].hasReady {
                let ready = cores[slot].ready()
                if let snapshot = ready.snapshot { storages[slot].applySnapshot(snapshot) }
                storages[slot].append(ready.entries)
                if let hardState = ready.hardState { storages[slot].setHardState(hardState) }
                queue += ready.leaderMessages + ready.messages
                cores[slot].advance(ready)
            }
            let sending = queue
            queue = []
            for message in sending {
                sent(message)
                if let slot = slot(of: message.to) { step(message, at: slot) }
            }
        }
    }
}
