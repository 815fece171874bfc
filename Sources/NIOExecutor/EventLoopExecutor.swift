import NIOCore

/// Runs Swift tasks on an event loop: the one that also does a process's network I/O.
///
/// gRPC handlers, peer streams and client calls are tasks. By default each resumes on the
/// cooperative pool, so every message crosses threads twice (event loop → pool → event loop)
/// and every crossing costs a wake-up and cache misses. With this executor preferred, a task
/// resumes on the loop thread that read its bytes and writes its answer there.
///
/// Work that blocks (password hashing, file I/O) must not run here: it would hold up every
/// other stream on the loop. Such work prefers `globalConcurrentExecutor` instead.
public final class EventLoopExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
