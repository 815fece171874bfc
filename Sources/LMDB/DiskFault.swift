import Foundation
import Synchronization

/// A disk that fails on purpose, for tests of what a node does when its storage does:
/// `CHORUS_TEST_DISK_FAULT=ERRNO@NAME#AFTER` makes every write transaction commit in an
/// environment whose directory is named NAME (`log`, `state`) fail with ERRNO (`EIO`,
/// `ENOSPC`) once AFTER commits there have succeeded, as a real disk's error reaches LMDB.
/// Debug builds only: a release build never reads the variable.
public enum DiskFault {
    #if DEBUG
    struct Armed {
        var code: Int32
        var directory: String
        var after: Int
    }

    private static let armed: Armed? = parse(ProcessInfo.processInfo.environment["CHORUS_TEST_DISK_FAULT"])
    private static let commits = Mutex<[String: Int]>([:])
    /// Faults a test in this process decides commit by commit, for the environments under a
    /// directory: the whole-node simulation fails the projections' writes from its seed.
    private static let deciders = Mutex<[String: @Sendable () -> Int32?]>([:])

    /// From now on every write commit in an environment under `directory` asks `decide`
    /// whether it fails, and with which errno; nil stops asking. Test builds only.
    public static func decide(under directory: String, _ decide: (@Sendable () -> Int32?)?) {
        let key = directory.hasSuffix("/") ? directory : directory + "/"
        deciders.withLock { $0[key] = decide }
    }

    static func parse(_ text: String?) -> Armed? {
        guard let text else { return nil }
        let codes: [String: Int32] = ["EIO": EIO, "ENOSPC": ENOSPC, "EDQUOT": EDQUOT, "EROFS": EROFS]
        let parts = text.split(whereSeparator: { $0 == "@" || $0 == "#" }).map(String.init)
        guard parts.count == 3, let code = codes[parts[0]], let after = Int(parts[2]), after >= 0 else { return nil }
        return Armed(code: code, directory: parts[1], after: after)
    }
    #endif

    /// The error an armed fault gives a write commit in the environment at `path`, if any.
    static func commitError(path: String) -> Int32? {
        #if DEBUG
        let decided = deciders.withLock { deciders in deciders.isEmpty ? nil : deciders.first { path.hasPrefix($0.key) }?.value }
        if let decided { return decided() }
        guard let armed, (path as NSString).lastPathComponent == armed.directory else { return nil }
        let done = commits.withLock { counts -> Int in
            let done = counts[path, default: 0] + 1
            counts[path] = done
            return done
        }
        return done > armed.after ? armed.code : nil
        #else
        return nil
        #endif
    }
}
