import Client
import Foundation
import Testing

/// Abusive clients against a real TLS cluster while normal ones chat: subscribers that never
/// read, 150-call bursts on one connection, huge id lists, oversized bodies, wrong-password and
/// account-creation storms. Normal clients keep succeeding, no node dies, and each node's
/// resident memory stays under `memoryBound`. `CHORUS_SOAK_SECONDS` lengthens it (the notes'
/// figures come from a longer run).
extension EdgeTests {
    static let memoryBound = 1 << 30

    @Test(.enabled(if: interopAvailable, "needs the Go load generator: scripts/test.sh builds it (ensure_interop)"))
    func abusiveClientsDoNotStopNormalOnesNorExhaustANode() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["CHORUS_SOAK_SECONDS"] ?? "") ?? 15
        let cluster = try TestCluster(size: 3, tls: true)
        try cluster.startAll()
        try await cluster.withClient(deadline: .seconds(20)) { client in
            let alice = try await client.newUser("alice")
            let bob = try await client.newUser("bob")
            try await client.createAccount(name: "victim", password: "victim-pw")
            let leader = try await cluster.waitForLeader(client)
            let before = cluster.ids.map { cluster.residentBytes($0) ?? 0 }
            let ca = "\(cluster.certificates)/ca.pem"
            let address = cluster.address(leader)

            // The abusers, each a grpc-go process on one connection.
            func launch(_ arguments: [String]) throws -> (Process, Pipe) {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Self.goLoad)
                process.arguments = ["-addr", address, "-ca", ca, "-duration", "\(seconds)s"] + arguments
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                return (process, output)
            }
            let abusers = [
                ("stalled subscribers", try launch(["-mode", "stall", "-user", "victim", "-password", "victim-pw", "-callers", "16"])),
                ("150-call burst", try launch(["-mode", "send", "-callers", "150"])),
                ("abuse", try launch(["-mode", "abuse", "-callers", "20"])),
            ]

            // Normal chat meanwhile: alice writes to bob, and to the stalled victim with
            // bodies big enough to fill its streams' buffers; bob reads his history.
            var normal = (ok: 0, errors: [String]())
            let end = ContinuousClock.now + .seconds(seconds)
            var n = 0
            while ContinuousClock.now < end {
                n += 1
                do {
                    _ = try await client.send(token: alice, to: "bob", body: "normal \(n)")
                    _ = try await client.send(token: alice, to: "victim", body: String(repeating: "v", count: 16 << 10))
                    if n % 10 == 0 { _ = try await client.history(token: bob, with: "alice", pageSize: 10) }
                    normal.ok += 1
                } catch {
                    normal.errors.append("\(error)")
                }
            }
            var reports: [String] = []
            for (name, (process, output)) in abusers {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                reports.append("\(name): \(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            let after = cluster.ids.map { cluster.residentBytes($0) ?? 0 }
            print("soak \(seconds) s: normal rounds \(normal.ok) ok, \(normal.errors.count) failed; RSS MiB before \(before.map { $0 >> 20 }) after \(after.map { $0 >> 20 })")
            for report in reports { print("soak \(report)") }

            #expect(normal.errors.isEmpty, "\(normal.errors.prefix(5))")
            #expect(normal.ok > 0)
            for id in cluster.ids { #expect(cluster.isRunning(id), "node \(id) died:\n\(cluster.log(id).suffix(2_000))") }
            for (id, bytes) in zip(cluster.ids, after) { #expect(bytes > 0 && bytes < Self.memoryBound, "node \(id): \(bytes >> 20) MiB") }
            // The abuse was answered with statuses, not served: no message of 300 KiB, no
            // account past the creation limit.
            #expect(reports[2].contains("ResourceExhausted"), "\(reports[2])")
        }
    }
}
