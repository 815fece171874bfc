import Foundation
import Testing
import LMDB
@testable import LogStore

@Suite struct LogStoreTests {
    @Test func emptyLogStartsAtOne() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            #expect(try log.firstIndex() == 1)
            #expect(try log.lastIndex() == 0)
            #expect(try log.entry(at: 1) == nil)
            #expect(try log.term(at: 0) == 0)
            #expect(try log.hardState() == StoredHardState())
        }
    }

    @Test func appendThenReadOneAndRange() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10))
            try log.append(entries(11...20, term: 2))
            #expect(try log.firstIndex() == 1)
            #expect(try log.lastIndex() == 20)
            #expect(try log.entry(at: 7) == entries(7...7)[0])
            #expect(try log.entries(from: 5, through: 12) == entries(5...10) + entries(11...12, term: 2))
            #expect(try log.term(at: 10) == 1)
            #expect(try log.term(at: 11) == 2)
            #expect(try log.term(at: 21) == nil)
            #expect(try log.entries(from: 19, through: 30).map(\.index) == [19, 20])
        }
    }

    @Test func rangeStopsAtByteBudgetButReturnsOne() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10))
            let size = entries(1...1)[0].payload.count
            #expect(try log.entries(from: 1, through: 10, maxBytes: size * 3).count == 3)
            #expect(try log.entries(from: 1, through: 10, maxBytes: 1).count == 1)
        }
    }

    @Test func refusesGapsAndUnorderedBatches() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...3))
            #expect(throws: LogStoreError.self) { try log.append(entries(5...6)) }
            #expect(throws: LogStoreError.unorderedBatch(at: 9)) {
                try log.append(entries(4...4) + entries(9...9))
            }
            #expect(try log.lastIndex() == 3)
        }
    }

    @Test func appendOverConflictingTailReplacesIt() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10))
            try log.append(entries(6...7, term: 3))
            #expect(try log.lastIndex() == 7)
            #expect(try log.entries(from: 1, through: 10) == entries(1...5) + entries(6...7, term: 3))
        }
    }

    @Test func truncateThenAppend() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10))
            try log.truncateSuffix(from: 4)
            #expect(try log.lastIndex() == 3)
            try log.append(entries(4...5, term: 2))
            #expect(try log.entries(from: 1, through: 5) == entries(1...3) + entries(4...5, term: 2))
        }
    }

    @Test func hardStateAndEntriesSurviveReopen() throws {
        try withTemporaryDirectory { dir in
            do {
                let log = try LogStore(directory: dir)
                try log.save(hardState: StoredHardState(term: 7, vote: 3, commit: 4), entries: entries(1...5, term: 7))
            }
            let reopened = try LogStore(directory: dir)
            #expect(try reopened.hardState() == StoredHardState(term: 7, vote: 3, commit: 4))
            #expect(try reopened.entries(from: 1, through: 5) == entries(1...5, term: 7))
        }
    }

    @Test func compactionDiscardsThePrefixAndKeepsTheSnapshotTerm() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10, term: 2))
            let snapshot = StoredSnapshot(index: 6, term: 2, configuration: [1, 2, 3])
            try log.compact(to: snapshot)
            #expect(try log.firstIndex() == 7)
            #expect(try log.lastIndex() == 10)
            #expect(try log.entry(at: 6) == nil)
            #expect(try log.term(at: 6) == 2)
            #expect(try log.snapshotMetadata() == snapshot)
            #expect(try log.count() == 4)
            // Nothing may be appended inside the snapshot.
            #expect(throws: LogStoreError.self) { try log.append(entries(5...5, term: 3)) }
            try log.append(entries(7...8, term: 3))
            #expect(try log.lastIndex() == 8)
        }
    }

    @Test func compactionCanKeepATrailingWindowBehindTheSnapshot() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10, term: 2))
            try log.append(entries(11...20, term: 3))
            try log.compact(to: StoredSnapshot(index: 15, term: 3), discardingThrough: 8)
            #expect(try log.firstIndex() == 9)
            #expect(try log.logStart().index == 8 && log.logStart().term == 2)
            #expect(try log.term(at: 8) == 2, "the term of the last discarded entry still matches an append after it")
            #expect(try log.term(at: 7) == nil)
            #expect(try log.entries(from: 9, through: 20).count == 12)
            #expect(try log.snapshotMetadata().index == 15)
            // A later compaction moves both forward; an older snapshot changes nothing.
            try log.compact(to: StoredSnapshot(index: 18, term: 3), discardingThrough: 16)
            #expect(try log.firstIndex() == 17 && log.snapshotMetadata().index == 18)
            try log.compact(to: StoredSnapshot(index: 12, term: 3))
            #expect(try log.firstIndex() == 17 && log.snapshotMetadata().index == 18)
            // Reopened, it is the same.
            let reopened = try LogStore(directory: dir, readOnly: true)
            #expect(try reopened.firstIndex() == 17 && reopened.lastIndex() == 20)
        }
    }

    @Test func installingASnapshotWithTheHardStateIsOneWrite() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...5, term: 1))
            // A conflicting snapshot (term 4 at index 5): the whole log goes.
            try log.save(hardState: StoredHardState(term: 4, vote: 2, commit: 30), entries: entries(31...32, term: 4),
                         snapshot: StoredSnapshot(index: 30, term: 4, configuration: [7]))
            #expect(try log.firstIndex() == 31 && log.lastIndex() == 32)
            #expect(try log.term(at: 30) == 4)
            #expect(try log.hardState() == StoredHardState(term: 4, vote: 2, commit: 30))
            #expect(try log.snapshotMetadata() == StoredSnapshot(index: 30, term: 4, configuration: [7]))
        }
    }

    @Test func snapshotAheadOfTheLogDiscardsEverything() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...5))
            try log.compact(to: StoredSnapshot(index: 20, term: 4))
            #expect(try log.count() == 0)
            #expect(try log.firstIndex() == 21)
            #expect(try log.lastIndex() == 20)
            try log.append(entries(21...21, term: 4))
            #expect(try log.lastIndex() == 21)
        }
    }

    @Test func snapshotWithDifferentTermAtIndexDiscardsEverything() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...10, term: 1))
            try log.compact(to: StoredSnapshot(index: 5, term: 9))
            #expect(try log.count() == 0)
            #expect(try log.lastIndex() == 5)
        }
    }

    @Test(arguments: [0, 1, 5, 13, 20])
    func flippedByteIsAnErrorNotData(offset: Int) throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...3))
            let raw = try log.environment.openDatabases(["entries"])[0]
            try log.environment.write { txn in
                var value = try #require(try txn.get(raw, UInt64(2).bigEndianBytes))
                value[offset % value.count] ^= 0x10
                try txn.put(raw, UInt64(2).bigEndianBytes, value)
            }
            #expect(throws: LogStoreError.corruptEntry(index: 2, path: dir)) { try log.entry(at: 2) }
            #expect(throws: LogStoreError.corruptEntry(index: 2, path: dir)) { try log.entries(from: 1, through: 3) }
            #expect(throws: LogStoreError.corruptEntry(index: 2, path: dir)) { try log.term(at: 2) }
            #expect(try log.entry(at: 1) == entries(1...1)[0])
        }
    }

    @Test func entryMovedToAnotherIndexIsDetected() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append(entries(1...2))
            let raw = try log.environment.openDatabases(["entries"])[0]
            try log.environment.write { txn in
                let one = try #require(try txn.get(raw, UInt64(1).bigEndianBytes))
                try txn.put(raw, UInt64(2).bigEndianBytes, one)
            }
            #expect(throws: LogStoreError.corruptEntry(index: 2, path: dir)) { try log.entry(at: 2) }
        }
    }

    @Test func lmdbErrorsNameOperationAndPath() throws {
        try withTemporaryDirectory { dir in
            let file = dir + "/not-a-directory"
            _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
            let error = #expect(throws: LMDBError.self) { _ = try LogStore(directory: file + "/log") }
            #expect(error?.path == file + "/log")
            #expect(error?.description.contains(file) == true)
        }
    }
}
