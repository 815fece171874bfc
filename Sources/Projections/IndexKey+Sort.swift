extension Array where Element == IndexKey {
    /// Sorts keys made in increasing order of their last part by their leading parts.
    ///
    /// A batch's index keys arrive in log order, so their last part (the message id) already
    /// increases; a stable sort on the ids before it yields the full order. For a rebuild's
    /// tens of thousands of keys a byte-wise radix sort does that in a few passes where a
    /// comparison sort makes sixteen comparisons of whole keys per element; bytes every key
    /// shares (the high bytes of ids) need no pass. Small batches, a node's usual, use the
    /// standard sort.
    mutating func sortAppendedKeys() {
        guard count >= 256 else {
            sort()
            return
        }
        let leading = self[0].count - 1
        let first = self[0]
        var scratch = self
        var sortedInSelf = true
        // Least significant byte first: the last leading word's low byte, up to the first
        // word's high byte.
        for word in (0..<leading).reversed() {
            var differing: UInt64 = 0
            for key in self { differing |= key.word(word) ^ first.word(word) }
            for byte in 0..<8 {
                let shift = UInt64(byte) * 8
                guard (differing >> shift) & 0xFF != 0 else { continue }
                if sortedInSelf {
                    Self.pass(self, into: &scratch, word: word, shift: shift)
                } else {
                    Self.pass(scratch, into: &self, word: word, shift: shift)
                }
                sortedInSelf.toggle()
            }
        }
        if !sortedInSelf { self = scratch }
    }

    /// One stable counting-sort pass on byte `shift / 8` of part `word`.
    private static func pass(_ source: [IndexKey], into target: inout [IndexKey], word: Int, shift: UInt64) {
        var offsets = [Int](repeating: 0, count: 256)
        source.withUnsafeBufferPointer { source in
            target.withUnsafeMutableBufferPointer { target in
                offsets.withUnsafeMutableBufferPointer { offsets in
                    for key in source { offsets[Int((key.word(word) >> shift) & 0xFF)] += 1 }
                    var total = 0
                    for digit in 0..<256 {
                        let size = offsets[digit]
                        offsets[digit] = total
                        total += size
                    }
                    for key in source {
                        let digit = Int((key.word(word) >> shift) & 0xFF)
                        target[offsets[digit]] = key
                        offsets[digit] += 1
                    }
                }
            }
        }
    }
}

extension IndexKey {
    /// Part `n` (0, 1 or 2).
    @inline(__always)
    func word(_ n: Int) -> UInt64 {
        switch n {
        case 0: parts.0
        case 1: parts.1
        default: parts.2
        }
    }
}
