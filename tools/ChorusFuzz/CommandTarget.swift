import Foundation
import LMDB
import Projections

/// Log entries: the input is a command as a leader (honest or not) replicated it. Every
/// replica applies what is committed, so applying any bytes must give an outcome (a value or
/// a rejection) and never trap or fail the batch.
enum CommandTarget {
    static let fixture = Fixture()
    nonisolated(unsafe) static var index: UInt64 = 1_000

    static func run(_ input: UnsafeRawBufferPointer) {
        index += 1
        do {
            _ = try fixture.state.apply([CommittedEntry(index: index, term: 1, command: Array(input))])
        } catch let error as LMDBError where error.kind == .mapFull {
            // The fixture filled up after millions of inputs: storage, not a finding.
        } catch {
            fatalError("applying entry \(index) failed the batch: \(error)")
        }
    }
}
