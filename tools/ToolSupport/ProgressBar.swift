import Foundation

/// A progress bar on stderr, only when stderr is a terminal.
public final class ProgressBar {
    public let total: Int
    public let label: String
    let enabled = isatty(STDERR_FILENO) == 1
    private var lastDrawn = -1

    public init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    public func update(_ done: Int) {
        guard enabled else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastDrawn else { return }
        lastDrawn = percent
        let filled = percent * 30 / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)%".utf8))
    }

    public func finish() {
        if enabled && lastDrawn >= 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
