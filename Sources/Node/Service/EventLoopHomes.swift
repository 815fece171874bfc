import NIOCore
import NIOExecutor
import Replica

/// Where a handler waiting on the replica resumes (`CallerHomes`): the event loop its
/// connection lives on, so that it answers from there without another hop. With one loop the
/// executor already runs every task there, and no home is named.
struct EventLoopHomes: CallerHomes {
    let executor: EventLoopExecutor

    func current() -> (any CallerHome)? {
        executor.currentLoop.map(LoopHome.init)
    }
}

/// One event loop, as a place to resume a waiting handler from.
struct LoopHome: CallerHome {
    let loop: any EventLoop

    func run(_ work: @escaping @Sendable () -> Void) {
        if loop.inEventLoop {
            work()
        } else {
            loop.execute(work)
        }
    }
}
