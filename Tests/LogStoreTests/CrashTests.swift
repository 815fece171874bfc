import Foundation
import Testing
@testable import LogStore

/// A child process appends batches and reports each one once `append` returned (fsynced);
/// SIGKILL lands at a random moment. Whatever the moment, the reopened log must be an unbroken
/// prefix holding every batch the child reported.
@Suite struct CrashTests {
    @Test(arguments: 0..<6)
    func killedWriterLeavesADurablePrefix(round: Int) throws {
        let tool = productsDirectory().appendingPathComponent("chorus-lab")
        try #require(FileManager.default.isExecutableFile(atPath: tool.path), "build chorus-lab first: \(tool.path)")
        try withTemporaryDirectory { dir in
            let child = Process()
            child.executableURL = tool
            child.arguments = ["log-writer", "--dir", dir, "--batches", "100000", "--batch-size", String(1 + round * 13)]
            let output = Pipe()
            child.standardOutput = output
            try child.run()

            // Let the child make some progress, then kill it at a random point.
            var reported: UInt64 = 0
            let lines = Int.random(in: 5...80)
            var buffer = Data()
            var seen = 0
            while seen < lines {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                let text = String(decoding: buffer, as: UTF8.self)
                let complete = text.split(separator: "\n", omittingEmptySubsequences: true)
                seen = complete.count
            }
            usleep(UInt32.random(in: 0...20_000))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            buffer.append(output.fileHandleForReading.readDataToEndOfFile())
            for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, parts[0] == "durable", let index = UInt64(parts[1]) {
                    reported = max(reported, index)
                }
            }
            #expect(child.terminationReason == .uncaughtSignal)
            #expect(reported > 0)

            let log = try LogStore(directory: dir)
            let last = try log.lastIndex()
            #expect(last >= reported, "batch up to \(reported) was reported durable but the log ends at \(last)")
            #expect(try log.firstIndex() == 1)
            let all = try log.entries(from: 1, through: last)
            #expect(all.count == Int(last))
            for entry in all {
                #expect(entry.payload == LogWriterPayload.bytes(for: entry.index))
            }
        }
    }
}

/// Mirrors what `chorus-lab log-writer` writes for each index.
enum LogWriterPayload {
    static func bytes(for index: UInt64) -> [UInt8] {
        Array("crash-test entry \(index)".utf8)
    }
}
