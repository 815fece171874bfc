import Foundation
import Raft
import Testing

/// Runs a scenario over many seeds. `CHORUS_SIM_SEEDS` multiplies the count (long runs);
/// `CHORUS_SIM_SEED` runs one seed (replaying a failure). The first failure stops the
/// scenario and prints the one-line command that replays it.
func simulate(
    _ name: String = #function, seeds: Int, _ body: (UInt64) throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let environment = ProcessInfo.processInfo.environment
    let scenario = String(name.prefix { $0 != "(" })
    let list: [UInt64]
    if let one = environment["CHORUS_SIM_SEED"].flatMap(UInt64.init) {
        list = [one]
    } else {
        let factor = environment["CHORUS_SIM_SEEDS"].flatMap(Int.init) ?? 1
        list = (1...max(1, seeds * factor)).map(UInt64.init)
    }
    for seed in list {
        do {
            try body(seed)
        } catch {
            Issue.record(
                "\(scenario): \(error)\n  replay: CHORUS_SIM_SEED=\(seed) swift test --filter \(scenario)",
                sourceLocation: sourceLocation
            )
            return
        }
    }
    SeedCounter.shared.add(list.count)
}

/// Counts seeds run in this process, for the summary in the notes.
final class SeedCounter: @unchecked Sendable {
    static let shared = SeedCounter()
    private let lock = NSLock()
    private var total = 0

    func add(_ n: Int) {
        lock.lock()
        total += n
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return total
    }
}

/// Proposal payloads that are unique and readable in failure messages.
func command(_ n: Int, _ tag: String = "cmd") -> [UInt8] {
    Array("\(tag)-\(n)".utf8)
}

extension SimRandom {
    mutating func pick<T>(_ items: [T]) -> T {
        items[Int.random(in: 0..<items.count, using: &self)]
    }

    mutating func subset(of items: [UInt64], count: Int) -> [UInt64] {
        Array(items.shuffled(using: &self).prefix(count))
    }
}

/// A liveness expectation inside a scenario.
func require(_ condition: Bool, _ sim: Simulation, _ message: @autoclosure () -> String) throws {
    if !condition { throw sim.checker.fail(message()) }
}
