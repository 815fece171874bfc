/// An invariant broken or a liveness bound missed, with enough to replay it.
struct SimulationFailure: Error, CustomStringConvertible {
    var seed: UInt64
    var time: Int
    var reason: String

    var description: String { "seed \(seed) at t=\(time): \(reason)" }
}

/// SplitMix64, the same generator the core uses, for the simulator's own choices.
struct SimRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

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
