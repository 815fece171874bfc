import Raft

/// An invariant broken or a liveness bound missed, with enough to replay it.
struct SimulationFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var time: Int
    var reason: String

    var description: String { "seed \(seed) at t=\(time): \(reason)" }
}

/// The simulator's own choices come from the core's generator, seeded per run.
typealias SimRandom = SplitMix64

extension SplitMix64 {
    mutating func chance(_ p: Double) -> Bool {
        p > 0 && Double.random(in: 0..<1, using: &self) < p
    }
}

/// FNV-1a over bytes: the simulated application's state is a running hash of what it applied.
func fnv(_ hash: UInt64, _ bytes: [UInt8]) -> UInt64 {
    var h = hash
    for byte in bytes {
        h ^= UInt64(byte)
        h &*= 0x100_0000_01B3
    }
    return h
}
