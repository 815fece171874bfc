import Client
import Foundation

/// The benchmark scenarios. Writes: Chorus sends a message (each caller between its own
/// pair of users), etcd puts a value under a fresh key. Reads: a page of the caller's
/// conversation (linearizable, ReadIndex), an etcd linearizable get. Mixed: 90% reads, 10%
/// writes, the shape of a chat client that mostly scrolls.
enum Scenario: String, CaseIterable, Sendable {
    case write, read, mixed

    init?(argument: String) {
        switch argument {
        case "write", "send", "put": self = .write
        case "read", "range", "history": self = .read
        case "mixed": self = .mixed
        default: return nil
        }
    }

    func name(for target: String) -> String {
        switch (self, target) {
        case (.write, "etcd"): "put"
        case (.read, "etcd"): "range"
        case (.write, _): "send"
        case (.read, _): "history"
        case (.mixed, _): "mixed 90/10"
        }
    }

    func isWrite(_ sequence: Int) -> Bool {
        switch self {
        case .write: true
        case .read: false
        case .mixed: sequence % 10 == 9
        }
    }
}

typealias BenchOperation = @Sendable (_ caller: Int, _ sequence: Int) async throws -> Void

enum ChorusWorkload {
    /// Users `bench-<i>-a` and `bench-<i>-b` for each caller (created once per cluster,
    /// logged in each run), with a few messages so that reads return a page.
    ///
    /// With `groupSize` above 1, each write is a send to the caller's own group of that many
    /// members: the caller's `a` and the accounts `bench-m0`… that every caller's group shares.
    static func prepare(_ client: ChorusClient, scenario: Scenario, callers: Int, bodyBytes: Int, groupSize: Int = 0) async throws -> BenchOperation {
        let body = String(repeating: "x", count: bodyBytes)
        let tokens = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var tokens = [String](repeating: "", count: callers)
            var next = 0
            func add(_ caller: Int) {
                group.addTask {
                    let a = "bench-\(caller)-a", b = "bench-\(caller)-b"
                    for name in [a, b] {
                        do {
                            try await client.createAccount(name: name, password: "bench-password")
                            if name == b {
                                // A fresh pair starts with a page of history to read.
                                let token = try await client.login(name: a, password: "bench-password").token
                                for n in 0..<20 { _ = try await client.send(token: token, to: b, body: "seed \(n) " + body) }
                            }
                        } catch ChorusError.alreadyExists {}
                    }
                    return (caller, try await client.login(name: a, password: "bench-password").token)
                }
            }
            // A few at a time: account creation hashes passwords on the leader.
            while next < min(callers, 8) { add(next); next += 1 }
            while let (caller, token) = try await group.next() {
                tokens[caller] = token
                if next < callers { add(next); next += 1 }
            }
            return tokens
        }
        if groupSize > 1 {
            let pool = (0..<(groupSize - 1)).map { "bench-m\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (n, name) in pool.enumerated() {
                    group.addTask {
                        do { try await client.createAccount(name: name, password: "bench-password") } catch ChorusError.alreadyExists {}
                    }
                    if n % 8 == 7 { try await group.waitForAll() }
                }
                try await group.waitForAll()
            }
            for caller in 0..<callers {
                do {
                    try await client.createGroup(token: tokens[caller], name: "bench-\(caller)-g\(groupSize)", members: pool)
                } catch ChorusError.alreadyExists {}
            }
            return { caller, _ in
                _ = try await client.sendToGroup(token: tokens[caller], group: "bench-\(caller)-g\(groupSize)", body: body)
            }
        }
        return { caller, sequence in
            if scenario.isWrite(sequence) {
                _ = try await client.send(token: tokens[caller], to: "bench-\(caller)-b", body: body)
            } else {
                _ = try await client.history(token: tokens[caller], with: "bench-\(caller)-b", pageSize: 20)
            }
        }
    }
}

enum EtcdWorkload {
    /// One key per caller for reads (written first); writes go to fresh keys.
    static func prepare(_ client: EtcdClient, scenario: Scenario, callers: Int, bodyBytes: Int) async throws -> BenchOperation {
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: bodyBytes)
        for caller in 0..<callers {
            try await client.put(key: Array("bench/read/\(caller)".utf8), value: value)
        }
        let run = UUID().uuidString.prefix(8)
        return { caller, sequence in
            if scenario.isWrite(sequence) {
                try await client.put(key: Array("bench/\(run)/\(caller)/\(sequence)".utf8), value: value)
            } else {
                _ = try await client.get(key: Array("bench/read/\(caller)".utf8))
            }
        }
    }
}
