import Foundation
import LMDB
import Testing
@testable import LogStore

/// The log says which format it is in: a log from before format versions is stamped with the
/// current one (the layout is the same), and a newer one is refused with a sentence.
@Suite struct FormatTests {
    @Test func theLogCarriesItsFormatAndRefusesANewerOne() throws {
        try withTemporaryDirectory { dir in
            do {
                let log = try LogStore(directory: dir)
                #expect(log.openedFormat == nil)
                try log.append(entries(1...3))
            }
            do {
                let log = try LogStore(directory: dir)
                #expect(log.openedFormat == LogStore.format)
                #expect(try log.lastIndex() == 3)
                // As a newer build would leave it.
                let meta = try log.environment.openDatabases(["meta"])[0]
                try log.environment.write { txn in try txn.put(meta, Array("format".utf8), UInt32(2).bigEndianBytes) }
            }
            let error = #expect(throws: LogStoreError.self) { _ = try LogStore(directory: dir) }
            #expect(error == .newerFormat(found: 2, known: 1, path: dir))
            #expect(error.map { "\($0)" }?.hasPrefix("the Raft log in \(dir) has format version 2, newer than this build reads (1)") == true)
        }
    }

    /// An entry of a kind the reader does not know is a problem a node refuses to start on.
    @Test func anEntryOfAnUnknownKindIsAProblem() throws {
        try withTemporaryDirectory { dir in
            let log = try LogStore(directory: dir)
            try log.append([LogEntry(index: 1, term: 1, kind: 0, payload: [1]), LogEntry(index: 2, term: 1, kind: 7, payload: [2])])
            try log.setHardState(StoredHardState(term: 1, vote: 0, commit: 0))
            #expect(try log.problems(maxValue: 1 << 62).isEmpty)
            #expect(try log.problems(maxValue: 1 << 62, entryKinds: 0...1) == ["\(log.path): entry 2 has entry kind 7, which this build does not know (it knows 0...1); a newer release wrote it, or the log is damaged"])
        }
    }
}
