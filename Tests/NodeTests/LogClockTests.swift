import Foundation
import Projections
import Testing
@testable import Node

/// The leader's timestamps (`LogClock`) against a wall clock that jumps, and what that does to
/// the log's clock and the exactly-once table.
@Suite struct LogClockTests {
    static let day: Int64 = 24 * 3_600_000
    static let start = ContinuousClock.now
    static func at(_ ms: Int64) -> ContinuousClock.Instant { start + .milliseconds(ms) }

    @Test func aSaneWallClockIsTheStamp() {
        let wall: Int64 = 1_800_000_000_000
        var clock = LogClock(wall: wall - 10_000, now: Self.at(-10_000))
        for step in Int64(0)..<100 {
            #expect(clock.stamp(wall: wall + step * 50, logClock: wall - 5_000, now: Self.at(step * 50)) == wall + step * 50)
        }
    }

    /// A jump of a day ahead moves the stamps no faster than real time (plus 0.1%); a jump
    /// back never takes them back, and the time it lasted is not lost.
    @Test func aJumpAheadRunsAtMostTwiceRealTimeAndAJumpBackNeverGoesBack() {
        let wall: Int64 = 1_800_000_000_000
        var clock = LogClock(wall: wall, now: Self.at(0))
        let before = clock.stamp(wall: wall, logClock: wall, now: Self.at(0))
        var previous = before
        for step in Int64(1)...100 {
            let stamp = clock.stamp(wall: wall + Self.day + step * 100, logClock: wall, now: Self.at(step * 100))
            #expect(stamp >= previous)
            #expect(stamp - before <= step * 100 + step / 10 + 1)
            previous = stamp
        }
        // 10 s of real time: about 10 s of log time, not a day.
        #expect(previous - before <= 10_010)
        // An hour behind what was stamped? Never backwards.
        let back = clock.stamp(wall: wall - 3_600_000, logClock: wall, now: Self.at(10_100))
        #expect(back == previous)
        // Back to the true time a minute later: the stamps follow it at once.
        #expect(clock.stamp(wall: wall + 70_100, logClock: wall, now: Self.at(70_100)) == wall + 70_100)
    }

    /// A cluster back from a pause: the log's clock is behind, and the wall clock a node
    /// reads when it starts is taken as it is. Another leader's clock ahead of this one's
    /// holds this one's stamps at the log's clock, never below it.
    /// A node that started 12 hours ago and never stamped since (a follower), whose wall
    /// clock jumped a day ahead, stamps the true time as its first leader's stamp, not the
    /// jumped clock nor the start time plus twice the wait.
    @Test func aNewLeadersFirstStampIsBoundedByTheTrueTime() {
        let wall: Int64 = 1_800_000_000_000
        let twelveHours: Int64 = 12 * 3_600_000
        var clock = LogClock(wall: wall - twelveHours, now: Self.at(-twelveHours))
        let first = clock.stamp(wall: wall + Self.day, logClock: wall - 1_000, now: Self.at(0))
        #expect(first >= wall && first <= wall + twelveHours / 1_000)
    }

    @Test func theWallAtStartIsTrustedAndTheLogsClockIsAFloor() {
        let wall: Int64 = 1_800_000_000_000
        var clock = LogClock(wall: wall, now: Self.at(0))
        #expect(clock.stamp(wall: wall + 10, logClock: wall - 60_000, now: Self.at(10)) == wall + 10)
        #expect(clock.stamp(wall: wall + 20, logClock: wall + 5_000, now: Self.at(20)) == wall + 5_000)
        #expect(clock.stamp(wall: wall + 6_000, logClock: wall + 5_000, now: Self.at(6_000)) == wall + 6_000)
    }

    /// The scenario of the issue: a client's request is applied; the leader's wall clock
    /// jumps a day ahead; a new client arrives (which makes apply forget clients idle for a
    /// day); the first client retries its request. Stamped by `LogClock` the retry is
    /// recognised and nothing is stored twice; stamped by the wall clock the client was
    /// forgotten and its message is stored again.
    @Test(arguments: [true, false])
    func theExactlyOnceWindowSurvivesALeaderClockJumpingADayAhead(bounded: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-clock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = try ChatState(directory: directory)
        var index: UInt64 = 0
        var wall: Int64 = 1_800_000_000_000
        var clock = LogClock(wall: wall, now: Self.at(0))
        var elapsed: Int64 = 0
        func run(_ kind: Command.OneOf_Kind, client: String = "", sequence: UInt64 = 0) throws -> Applied {
            index += 1
            elapsed += 100
            wall += 100
            var command = Command()
            command.version = ChatState.commandVersion
            command.clientID = client
            command.sequence = sequence
            command.firstOutstanding = sequence
            command.timestampMs = bounded ? clock.stamp(wall: wall, logClock: try state.logClock(), now: Self.at(elapsed)) : wall
            command.kind = kind
            return try #require(try state.apply(command, at: index))
        }
        let salt = Credentials.newSalt()
        for name in ["alice", "bob"] {
            _ = try run(.createAccount(.with {
                $0.name = name
                $0.salt = Data(salt)
                $0.iterations = 1
                $0.passwordHash = Data(Credentials.hashPassword("pw", salt: salt, iterations: 1)!)
            }))
        }
        let token = Data(Credentials.tokenHash(Credentials.newToken()))
        _ = try run(.openSession(.with { $0.name = "alice"; $0.tokenHash = token; $0.idleMs = 0; $0.lifetimeMs = 0 }))
        let send = Command.OneOf_Kind.sendMessage(.with { $0.tokenHash = token; $0.recipient = "bob"; $0.body = "once" })
        let first = try run(send, client: "alice-phone", sequence: 1)

        wall += Self.day + 60_000
        _ = try run(.sendMessage(.with { $0.tokenHash = token; $0.recipient = "bob"; $0.body = "from another client" }), client: "alice-laptop", sequence: 1)
        let retry = try run(send, client: "alice-phone", sequence: 1)

        if bounded {
            #expect(retry.duplicate && retry.outcome == first.outcome, "the retry was applied again")
        } else {
            // What the bound prevents: the client was forgotten, and the message is stored twice.
            #expect(!retry.duplicate)
        }
    }
}
