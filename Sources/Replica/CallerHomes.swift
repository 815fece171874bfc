/// Where a caller of `propose` or `linearizableRead` resumes once the loop has answered it.
///
/// The node's handlers are tasks on its event loops (`EventLoopExecutor` in `NIOExecutor`).
/// The loop answers from its own thread, and a task resumed from there would go to whichever
/// loop comes next in turn, away from its connection. So a caller names its home before it
/// waits, and is resumed from there. Without homes (tests, tools) a caller resumes from the
/// loop's thread.
public protocol CallerHomes: Sendable {
    /// The calling thread's home, or nil when a caller resumed anywhere is as well off.
    func current() -> (any CallerHome)?
}

/// One place a waiting caller resumes from.
public protocol CallerHome: Sendable {
    /// Runs `work` there: at once when called from there, otherwise as soon as it can.
    func run(_ work: @escaping @Sendable () -> Void)
}

/// Resumes `continuation` with `value` from `home`, or at once without one.
func resumeCaller<T: Sendable>(_ continuation: CheckedContinuation<T, Never>, returning value: T, at home: (any CallerHome)?) {
    if let home {
        home.run { continuation.resume(returning: value) }
    } else {
        continuation.resume(returning: value)
    }
}
