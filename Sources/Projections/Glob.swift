/// Shell-style wildcard matching over ASCII names: `*` is any run (also empty), `?` is one
/// character. Linear time: backtracks only to the most recent `*`.
public struct Glob: Sendable {
    let pattern: [UInt8]

    public init(_ pattern: String) {
        self.pattern = Array(pattern.utf8)
    }

    /// The literal characters before the first wildcard; every match starts with them, so a
    /// listing can seek straight to them instead of scanning every account.
    public var literalPrefix: [UInt8] {
        Array(pattern.prefix { $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: "?") })
    }

    public func matches(_ name: String) -> Bool {
        matches(Array(name.utf8))
    }

    public func matches(_ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t]) {
                p += 1
                t += 1
            } else if p < pattern.count && pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if let s = star {
                p = s + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
