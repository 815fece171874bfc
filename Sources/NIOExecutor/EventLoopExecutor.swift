import NIOCore
import Synchronization

/// Runs Swift tasks on event loops: the ones that also do a process's network I/O.
///
/// gRPC handlers, peer streams and client calls are tasks. By default each resumes on the
/// cooperative pool, so every message crosses threads twice (event loop → pool → event loop)
/// and every crossing costs a wake-up and cache misses. With this executor preferred, a task
/// resumes on the loop thread that woke it, which for a handler is the loop that read its
/// bytes, and writes its answer there.
///
/// With several loops, each connection's traffic and handlers stay on the loop NIO gave the
/// connection, so a node serves its clients from as many threads as it has loops. A task woken
/// from outside the loops (the Raft thread answering a proposal) goes to the loops in turn,
/// unless the waiter named its loop (`currentLoop`) and is resumed from there.
///
/// Work that blocks (password hashing, file I/O) must not run here: it would hold up every
/// other stream on the loop. Such work prefers `globalConcurrentExecutor` instead.
public final class EventLoopExecutor: TaskExecutor {
    public let loops: [any EventLoop]
    private let turn = Atomic<Int>(0)

    public init(_ loop: any EventLoop) {
        loops = [loop]
    }

    /// Every loop of `group`.
    public init(_ group: any EventLoopGroup) {
        loops = Array(group.makeIterator())
        precondition(!loops.isEmpty, "an event loop group without loops")
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        target.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    private var target: any EventLoop {
        if loops.count == 1 { return loops[0] }
        for loop in loops where loop.inEventLoop { return loop }
        return loops[turn.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// The loop the calling thread runs, if it is one of these: what a task about to wait for
    /// another thread names, so that it resumes where its connection lives.
    public var currentLoop: (any EventLoop)? {
        loops.count == 1 ? nil : loops.first { $0.inEventLoop }
    }
}
