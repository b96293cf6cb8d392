import NIOCore
import NIOPosix

/// Runs the jobs of the tasks that prefer it on one NIO event loop.
///
/// A destination's lanes run on the event loop of the connections they post on: the request is written without a
/// hop to the loop, and the answer resumes the lane on the thread that read it, so a delivery changes threads
/// neither way (on the pool, each request woke an event loop thread and each answer a pool thread: 16% of
/// relay-realtime's CPU was the scheduler switching between them).
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per loop of NIO's shared group, the group the partner connections use.
    static let shared: [EventLoopTaskExecutor] = MultiThreadedEventLoopGroup.singleton.makeIterator()
        .map { EventLoopTaskExecutor($0) }
}
