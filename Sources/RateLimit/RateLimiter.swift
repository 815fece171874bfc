import Foundation
import Synchronization

/// Token buckets per source address (used by the nodes for logins and account creation, and
/// by the web gateway for each browser's address): `perMinute` events a minute, up to `perMinute` at once.
///
/// The table of sources is bounded: when it is full, sources whose buckets have refilled are
/// forgotten first, and if none has, new sources share one bucket, so a flood of addresses
/// cannot grow the table or escape the limit.
public final class RateLimiter: Sendable {
    public let perMinute: Int
    public let capacity: Int

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    private static let shared = "shared"

    public init(perMinute: Int, capacity: Int = 10_000) {
        self.perMinute = perMinute
        self.capacity = capacity
    }

    /// Takes one token for `source`; when there is none, returns how long until there is.
    public func take(_ source: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let rate = Double(perMinute) / 60
        let full = Double(perMinute)
        return buckets.withLock { buckets in
            var key = source
            if buckets[key] == nil && buckets.count >= capacity {
                buckets = buckets.filter { Self.refill($0.value, now: now, rate: rate, full: full).tokens < full }
                if buckets.count >= capacity { key = Self.shared }
            }
            var bucket = Self.refill(buckets[key] ?? Bucket(tokens: full, updated: now), now: now, rate: rate, full: full)
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return .milliseconds(Int(((1 - bucket.tokens) / rate * 1000).rounded(.up)))
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            return nil
        }
    }

    /// Returns a token taken for `source` (an attempt that turned out harmless, such as a
    /// right password): taking before the attempt and giving back after it bounds the
    /// attempts in flight, which checking first and taking after a failure does not.
    public func giveBack(_ source: String, now: ContinuousClock.Instant = .now) {
        let rate = Double(perMinute) / 60
        let full = Double(perMinute)
        buckets.withLock { buckets in
            // Only a bucket of its own: one forgotten meanwhile is full again anyway, and the
            // shared bucket may have paid for someone else.
            guard let stored = buckets[source] else { return }
            var bucket = Self.refill(stored, now: now, rate: rate, full: full)
            bucket.tokens = min(full, bucket.tokens + 1)
            buckets[source] = bucket
        }
    }

    /// Whether `source` has a token left, without taking it.
    public func wouldAllow(_ source: String, now: ContinuousClock.Instant = .now) -> Duration? {
        let rate = Double(perMinute) / 60
        let full = Double(perMinute)
        return buckets.withLock { buckets in
            guard let stored = buckets[source] ?? (buckets.count >= capacity ? buckets[Self.shared] : nil) else { return nil }
            let bucket = Self.refill(stored, now: now, rate: rate, full: full)
            return bucket.tokens >= 1 ? nil : .milliseconds(Int(((1 - bucket.tokens) / rate * 1000).rounded(.up)))
        }
    }

    private static func refill(_ bucket: Bucket, now: ContinuousClock.Instant, rate: Double, full: Double) -> Bucket {
        let elapsed = bucket.updated.duration(to: now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Bucket(tokens: min(full, bucket.tokens + max(0, seconds) * rate), updated: max(bucket.updated, now))
    }

    /// The address part of gRPC's `remotePeer` ("ipv4:127.0.0.1:5000" → "ipv4:127.0.0.1"):
    /// every connection from one host shares its buckets.
    public static func source(of remotePeer: String) -> String {
        guard let colon = remotePeer.lastIndex(of: ":"), remotePeer[..<colon].contains(":") else { return remotePeer }
        return String(remotePeer[..<colon])
    }
}
