import Foundation
import Histogram
import NIOExecutor
import NIOPosix

/// What one closed-loop run measured.
struct BenchResult: Sendable, Codable {
    var target: String
    var scenario: String
    var callers: Int
    var seconds: Double
    var operations: UInt64
    var errors: Int
    var opsPerSecond: Double
    var p50Ms: Double
    var p90Ms: Double
    var p99Ms: Double
    var p999Ms: Double
    var maxMs: Double
    /// The first error seen, to say what the errors were.
    var firstError: String?

    var line: String {
        String(format: "%@ %@  callers %d  ops/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  errors %d",
               target, scenario, callers, opsPerSecond, p50Ms, p90Ms, p99Ms, p999Ms, maxMs, errors)
            + (firstError.map { " (first: \($0))" } ?? "")
    }
}

/// A closed loop: each caller issues its next operation as soon as the previous one
/// completes. Latencies of operations started after the warm-up and finished before the end
/// go into an HdrHistogram (microseconds, 3 significant digits), one per caller, merged.
///
/// The callers run on the event loop that carries their connections (`chorus-tools` makes
/// NIO's shared group one thread), so a call costs the generator no thread hand-offs: it takes
/// less of the machine away from the clusters it measures, the same for Chorus and etcd.
enum LoadGenerator {
    static let executor = EventLoopExecutor(MultiThreadedEventLoopGroup.singleton.next())

    static func run(
        target: String, scenario: String, callers: Int, warmup: Duration, duration: Duration,
        operation: @escaping @Sendable (_ caller: Int, _ sequence: Int) async throws -> Void
    ) async throws -> BenchResult {
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + warmup
        let end = measureFrom + duration
        let (histogram, errors, firstError) = await withTaskGroup(of: (Histogram<UInt64>, Int, String?).self) { group in
            for caller in 0..<callers {
                group.addTask(executorPreference: executor) {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
                    var errors = 0
                    var firstError: String?
                    var sequence = 0
                    while clock.now < end {
                        let began = clock.now
                        do {
                            try await operation(caller, sequence)
                            let finished = clock.now
                            if began >= measureFrom && finished <= end {
                                _ = histogram.record(UInt64(max(1, (finished - began).microseconds)))
                            }
                        } catch {
                            if began >= measureFrom {
                                errors += 1
                                if firstError == nil { firstError = "\(error)" }
                            }
                        }
                        sequence += 1
                    }
                    return (histogram, errors, firstError)
                }
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
            var errors = 0
            var firstError: String?
            for await (histogram, failed, first) in group {
                merged.add(histogram)
                errors += failed
                firstError = firstError ?? first
            }
            return (merged, errors, firstError)
        }
        let seconds = duration.seconds
        func ms(_ percentile: Double) -> Double { histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000 }
        return BenchResult(
            target: target, scenario: scenario, callers: callers, seconds: seconds,
            operations: histogram.totalCount, errors: errors, opsPerSecond: Double(histogram.totalCount) / seconds,
            p50Ms: ms(50), p90Ms: ms(90), p99Ms: ms(99), p999Ms: ms(99.9),
            maxMs: histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000,
            firstError: firstError
        )
    }
}

extension Duration {
    var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Double { seconds * 1000 }

    init(seconds: Double) {
        self = .microseconds(Int64(seconds * 1_000_000))
    }
}
