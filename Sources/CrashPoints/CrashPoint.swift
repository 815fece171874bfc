import Foundation

/// Named places in multi-step disk work where a test can kill the process, to prove that a
/// crash between any two steps leaves state a restart recovers from.
///
/// Set `CHORUS_CRASH_AT` to a point's name; the process then SIGKILLs itself on reaching
/// it, exactly as an external `kill -9` would, with nothing flushed or cleaned up. Debug
/// builds only: a release build never reads the variable.
public enum CrashPoint {
    #if DEBUG
    private static let armed: String? = ProcessInfo.processInfo.environment["CHORUS_CRASH_AT"]
    #endif

    @inline(__always)
    public static func reach(_ name: String) {
        #if DEBUG
        guard let armed, armed == name else { return }
        FileHandle.standardError.write(Data("chorus: crash point '\(name)' reached, killing the process\n".utf8))
        kill(getpid(), SIGKILL)
        #endif
    }
}
