import Raft
import Testing
@testable import Projections

/// A batch's index keys are sorted before they are written; the radix sort for large
/// batches must give what the standard sort gives, for keys made in log order.
@Suite struct IndexKeySortTests {
    /// Keys as a batch makes them: ids increasing, the other parts drawn from `users`.
    static func keys(count: Int, parts: Int, users: [UInt64], seed: UInt64) -> [IndexKey] {
        var random = SplitMix64(state: seed)
        var id = UInt64.random(in: 1...1 << 40, using: &random)
        return (0..<count).map { _ in
            id += UInt64.random(in: 1...3, using: &random)
            let a = users.randomElement(using: &random)!, b = users.randomElement(using: &random)!
            return parts == 2 ? IndexKey(a, id) : .conversation(a, b, id)
        }
    }

    @Test(arguments: [1, 255, 256, 257, 5_000, 70_000])
    func radixSortAgreesWithTheStandardSort(count: Int) {
        let userSets: [[UInt64]] = [
            [7],                                                    // every leading byte shared
            Array(1...200),                                         // one byte differs: an odd number of passes
            Array(1...1_000),                                       // low bytes differ
            [1, 300, 70_000, 1 << 33, 1 << 62, .max, .max - 1],     // every byte position differs
        ]
        for (n, users) in userSets.enumerated() {
            for parts in [2, 3] {
                var keys = Self.keys(count: count, parts: parts, users: users, seed: UInt64(count * 10 + n))
                let expected = keys.sorted()
                keys.sortAppendedKeys()
                #expect(keys.elementsEqual(expected), "\(count) keys of \(parts) parts, user set \(n)")
            }
        }
    }
}
