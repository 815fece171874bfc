import Foundation
import Raft
import Synchronization

/// The data-directory incarnation each peer had when this node first heard from it, kept in
/// `DATA/peers`. A peer that comes back with another one lost its data (its votes, its log):
/// letting it vote again under its old id could elect two leaders in one term, so its
/// messages are refused until an operator removes the id and adds the node under a new one.
final class Incarnations: Sendable {
    private let file: String
    private let known: Mutex<[NodeID: UInt64]>

    init(directory: String) {
        file = directory + "/peers"
        var known: [NodeID: UInt64] = [:]
        if let data = FileManager.default.contents(atPath: file) {
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: "=")
                if parts.count == 2, let id = NodeID(parts[0]), let incarnation = UInt64(parts[1]) { known[id] = incarnation }
            }
        }
        self.known = Mutex(known)
    }

    /// Whether `node` was heard from before (by this data directory, in any run).
    func knows(_ node: NodeID) -> Bool {
        known.withLock { $0[node] != nil }
    }

    /// Nil when `node` may speak; otherwise why not. The first incarnation heard is recorded
    /// durably before it is accepted; 0 (a sender that does not say) is let through.
    func check(_ node: NodeID, _ incarnation: UInt64) -> String? {
        guard incarnation != 0 else { return nil }
        return known.withLock { known in
            if let recorded = known[node] {
                guard recorded != incarnation else { return nil }
                return "node \(node)'s data directory was recreated (it lost its log and votes): it may not take part under id \(node) again; remove it (chorus-tools member remove \(node)) and add it back under a new id"
            }
            known[node] = incarnation
            let text = known.keys.sorted().map { "\($0)=\(known[$0]!)\n" }.joined()
            do {
                try DataDirectory.writeDurably(file, text)
            } catch {
                known[node] = nil
                return "cannot record node \(node)'s incarnation: \(error)"
            }
            return nil
        }
    }
}
