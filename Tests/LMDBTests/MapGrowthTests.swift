import Foundation
import Synchronization
import Testing
@testable import LMDB

/// The memory map starts small and doubles when a write fills it, with readers on other
/// threads all the while; at its maximum a full map is an error and nothing is lost.
@Suite struct MapGrowthTests {
    static let value = [UInt8](repeating: 0xAB, count: 32 << 10)

    static func key(_ n: Int) -> [UInt8] { Array(String(format: "k%08d", n).utf8) }

    @Test func aFullMapDoublesAndTheWriteRunsAgain() throws {
        try withTemporaryDirectory { dir in
            let env = try Environment(path: dir, options: .init(mapSize: 1 << 20, maxMapSize: 64 << 20, writeMap: true))
            let table = try env.openDatabases(["t"])[0]
            #expect(env.mapSize == 1 << 20)
            // One transaction of 3 MiB: it fills 1 MiB, then 2 MiB, and commits in 4 MiB.
            var runs = 0
            try env.write { txn in
                runs += 1
                for n in 0..<96 { try txn.put(table, Self.key(n), Self.value) }
            }
            #expect(runs == 3)
            #expect(env.mapSize == 4 << 20)
            // With a writable map the file is the map's size: it grew with it.
            let size = try FileManager.default.attributesOfItem(atPath: dir + "/data.mdb")[.size] as? Int
            #expect(size == 4 << 20)
            let (count, last) = try env.read { txn in (try txn.count(table), try txn.get(table, Self.key(95))) }
            #expect(count == 96)
            #expect(last == Self.value)
        }
    }

    @Test func readersOnOtherThreadsSeeWholeCommitsWhileTheMapGrows() throws {
        try withTemporaryDirectory { dir in
            let env = try Environment(path: dir, options: .init(mapSize: 1 << 20, maxMapSize: 256 << 20, writeMap: true))
            let table = try env.openDatabases(["t"])[0]
            let progress = Progress()
            // Threads, not tasks: the readers spin, and two cores' worth of tasks would starve
            // the writer.
            var readers: [Thread] = []
            let finished = DispatchGroup()
            for _ in 0..<3 {
                finished.enter()
                let thread = Thread {
                    defer { finished.leave() }
                    while !progress.done.load(ordering: .acquiring) {
                        // Each commit writes `count` and keys 0..<count: a reader sees both or neither.
                        let seen = try? env.read { txn in
                            let count = try txn.get(table, Array("count".utf8)).map { Int(String(decoding: $0, as: UTF8.self))! } ?? 0
                            return (count > 0 ? try txn.get(table, Self.key(count - 1)) : Self.value, try txn.get(table, Self.key(count)))
                        }
                        if let seen, seen.0 == Self.value, seen.1 == nil {
                            progress.consistentReads.add(1, ordering: .relaxed)
                        } else {
                            progress.badReads.add(1, ordering: .relaxed)
                        }
                    }
                }
                readers.append(thread)
                thread.start()
            }
            defer { progress.done.store(true, ordering: .releasing); finished.wait() }
            for batch in 0..<40 {
                try env.write { txn in
                    for n in (batch * 16)..<((batch + 1) * 16) { try txn.put(table, Self.key(n), Self.value) }
                    try txn.put(table, Array("count".utf8), Array("\((batch + 1) * 16)".utf8))
                }
            }
            progress.done.store(true, ordering: .releasing)
            finished.wait()
            #expect(env.mapSize >= 32 << 20)
            #expect(progress.badReads.load(ordering: .relaxed) == 0)
            #expect(progress.consistentReads.load(ordering: .relaxed) > 0)
            #expect(try env.read { txn in try txn.count(table) } == 641)
        }
    }

    final class Progress: Sendable {
        let done = Atomic<Bool>(false)
        let consistentReads = Atomic<Int>(0)
        let badReads = Atomic<Int>(0)
    }

    @Test func atTheMaximumAFullMapIsAnErrorAndEarlierCommitsStay() throws {
        try withTemporaryDirectory { dir in
            let env = try Environment(path: dir, options: .init(mapSize: 1 << 20, maxMapSize: 2 << 20, writeMap: true))
            let table = try env.openDatabases(["t"])[0]
            try env.write { txn in try txn.put(table, Self.key(0), Self.value) }
            #expect {
                try env.write { txn in
                    for n in 1..<200 { try txn.put(table, Self.key(n), Self.value) }
                }
            } throws: { error in
                (error as? LMDBError)?.kind == .mapFull
            }
            #expect(env.mapSize == 2 << 20)
            let (count, first) = try env.read { txn in (try txn.count(table), try txn.get(table, Self.key(0))) }
            #expect(count == 1)
            #expect(first == Self.value)
        }
    }

    @Test func reopeningKeepsWhatTheGrownMapHeld() throws {
        try withTemporaryDirectory { dir in
            do {
                let env = try Environment(path: dir, options: .init(mapSize: 1 << 20, writeMap: true))
                let table = try env.openDatabases(["t"])[0]
                try env.write { txn in for n in 0..<128 { try txn.put(table, Self.key(n), Self.value) } }
                try env.sync()
            }
            // Opened again at the small starting size: LMDB keeps at least what is in use, and
            // the next write that needs more grows the map again.
            let env = try Environment(path: dir, options: .init(mapSize: 1 << 20, writeMap: true))
            let table = try env.openDatabases(["t"])[0]
            try env.write { txn in for n in 128..<160 { try txn.put(table, Self.key(n), Self.value) } }
            let (count, third) = try env.read { txn in (try txn.count(table), try txn.get(table, Self.key(3))) }
            #expect(count == 160)
            #expect(third == Self.value)
        }
    }
}
