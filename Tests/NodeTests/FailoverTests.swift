import Client
import Foundation
import Testing

/// The client library under a leader kill, and the node's refusal of foreign data. Part of
/// the serialized cluster suite.
extension ClusterTests {
    /// 4 clients send 500 messages between them; the leader is SIGKILLed part-way. Every send
    /// acknowledged to its caller is stored exactly once, and the subscribed recipient gets
    /// every one of them.
    @Test func sendsAcrossALeaderKillAreStoredOnceAndDelivered() async throws {
        let cluster = try TestCluster()
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(20)) { client in
            let recipient = try await client.newUser("inbox")
            var senders: [String] = []
            for n in 0..<4 { senders.append(try await client.newUser("sender\(n)")) }
            var feed = client.subscribe(token: recipient).makeAsyncIterator()
            guard case .attached = try await feed.next() else { Issue.record("not attached"); return }
            let leader = try await cluster.waitForLeader(client)

            let progress = Counter()
            let tokens = senders
            let acknowledged: [String: UInt64] = try await withThrowingTaskGroup(of: [String: UInt64].self) { group in
                for (n, token) in tokens.enumerated() {
                    group.addTask {
                        var mine: [String: UInt64] = [:]
                        for k in 0..<125 {
                            let body = "s\(n)-\(k)"
                            mine[body] = try await client.send(token: token, to: "inbox", body: body)
                            progress.increment()
                        }
                        return mine
                    }
                }
                group.addTask {
                    while progress.value < 150 { try await Task.sleep(for: .milliseconds(5)) }
                    cluster.kill(leader)
                    return [:]
                }
                var all: [String: UInt64] = [:]
                for try await part in group { all.merge(part) { a, _ in a } }
                return all
            }
            #expect(acknowledged.count == 500)
            #expect(Set(acknowledged.values).count == 500, "two sends share a message id")

            // Stored exactly once: the recipient's conversation with each sender.
            var stored: [String: Int] = [:]
            for n in 0..<4 {
                var token: String?
                repeat {
                    let page = try await client.history(token: recipient, with: "sender\(n)", pageSize: 200, pageToken: token, oldestFirst: true)
                    for message in page.messages { stored[message.body, default: 0] += 1 }
                    token = page.nextPageToken
                } while token != nil
            }
            #expect(stored.count == 500)
            #expect(stored.values.allSatisfy { $0 == 1 }, "duplicates: \(stored.filter { $0.value > 1 }.keys.sorted())")

            // Delivered to the subscriber, pushed or replayed after it re-attached.
            var received = Set<String>()
            let clock = ContinuousClock()
            let end = clock.now + .seconds(30)
            while received.count < 500 && clock.now < end {
                guard let event = try await feed.next() else { break }
                if case let .message(message) = event { received.insert(message.body) }
            }
            #expect(received == Set(acknowledged.keys), "missing: \(Set(acknowledged.keys).subtracting(received).sorted().prefix(10))")
        }
    }

    @Test func aNodeRefusesAnotherClustersData() async throws {
        // Insecure: with TLS the node's certificate, which names cluster 'test', is refused first.
        let cluster = try TestCluster(size: 1, tls: false, placement: .inProcess)
        try cluster.start(1)
        try await cluster.withClient { client in _ = try await cluster.waitForLeader(client) }
        await cluster.shutDown(1)
        var command = cluster.command(1)
        command.cluster = "another-cluster"
        let (status, message) = try await runNode(command.arguments)
        #expect(status != 0)
        #expect(message.contains("belongs to cluster=test"), "\(message)")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
