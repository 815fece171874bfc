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
            let target = cluster.cores[message.to] != nil ? message.to : 1
            _ = cluster.cores[target]!.step(message)
            cluster.deliver(rounds: 3)
            if n % 4 == 3 { cluster.tick() }
        }
        for _ in 0..<20 { cluster.tick() }
    }
}

/// Three cores on in-memory storage, delivering their own messages to each other at once.
struct MiniCluster {
    var cores: [NodeID: RaftCore] = [:]
    var storages: [NodeID: MemoryStorage] = [:]
    var queue: [Raft.Message] = []
    var proposals = 0

    init() {
        let configuration = ClusterConfiguration(voters: [1, 2, 3])
        for id: NodeID in 1...3 {
            let storage = MemoryStorage(configuration: configuration)
            storages[id] = storage
            var options = RaftOptions(id: id, seed: 42)
            options.maxInflightMessages = 8
            cores[id] = RaftCore(storage: storage, options: options)
        }
    }

    /// Elects node 1 and commits a few entries.
    mutating func warmUp() {
        cores[1]!.campaign()
        deliver(rounds: 10)
        for n in 0..<3 { propose(n) }
        deliver(rounds: 10)
    }

    mutating func propose(_ n: Int) {
        for id in cores.keys.sorted() where cores[id]!.isLeader {
            cores[id]!.propose([Array("cmd-\(n)".utf8)])
        }
    }

    mutating func tick() {
        for id in cores.keys.sorted() { cores[id]!.tick() }
        proposals += 1
        propose(proposals)
        deliver(rounds: 3)
    }

    /// Persists every ready and delivers what it sends, `rounds` times over.
    mutating func deliver(rounds: Int) {
        for _ in 0..<rounds {
            for id in cores.keys.sorted() where cores[id]!.hasReady {
                let ready = cores[id]!.ready()
                let storage = storages[id]!
                if let snapshot = ready.snapshot { storage.applySnapshot(snapshot) }
                storage.append(ready.entries)
                if let hardState = ready.hardState { storage.setHardState(hardState) }
                queue += ready.leaderMessages + ready.messages
                cores[id]!.advance(ready)
            }
            let sending = queue
            queue = []
            for message in sending where cores[message.to] != nil {
                _ = cores[message.to]!.step(message)
            }
        }
    }
}
