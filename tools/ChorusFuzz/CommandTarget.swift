import Foundation
import LMDB
import Projections

/// Log entries: the input is a command as a leader (honest or not) replicated it. Every
/// replica applies what is committed, so applying any bytes must give an outcome (a value or
/// a rejection), or stop the node with `UnknownEntry` when the bytes are beyond what this
/// build knows (the same on every replica of the build); never trap or fail otherwise.
enum CommandTarget {
    static let fixture = Fixture()
    nonisolated(unsafe) static var index: UInt64 = 1_000

    static func run(_ input: UnsafeRawBufferPointer) {
        index += 1
        do {
            _ = try fixture.state.apply([CommittedEntry(index: index, term: 1, command: Array(input))])
        } catch is UnknownEntry {
            // A node stops here, by design, before anything of the batch is written.
        } catch let error as LMDBError where error.kind == .mapFull {
            // The fixture filled up after millions of inputs: storage, not a finding.
        } catch {
            fatalError("applying entry \(index) failed the batch: \(error)")
        }
    }
}
