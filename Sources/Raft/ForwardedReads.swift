/// The linearizable reads a follower forwarded to its leader and has not heard back about,
/// by the name it gave each on the wire.
///
/// The follower names its reads itself, as the leader names its rounds, rather than sending
/// the application's context: an application's counter starts again in every process, and an
/// answer to a read sent before a restart (in the same term, to the same leader, from a round
/// that stalled and then completed) would confirm a new read under the same name at an index
/// older than writes its client has since seen acknowledged. A name is this process's random
/// incarnation and a counter, so no earlier process can have used it, and an answer counts
/// only for a read this process sent and has not yet heard back about.
struct ForwardedReads {
    /// Drawn at random when the core starts (the node seeds each start anew).
    let incarnation: UInt64
    private var sent: UInt64 = 0
    /// Wire name → the application's context.
    private var waiting: [[UInt8]: [UInt8]] = [:]
    /// The application's context → its wire name: a read asked again (its answer was lost)
    /// goes out under the name it already has, so one answer serves it and nothing is left
    /// behind.
    private var names: [[UInt8]: [UInt8]] = [:]

    /// At most this many reads wait for an answer; past it the oldest half is forgotten (their
    /// answers are then dropped, and the application asks again or gives up). Reads wait only
    /// while this server follows the same leader in the same term (a pre-candidate keeps them
    /// until it becomes a candidate or hears a leader), so this bounds only a long-lived
    /// leader whose answers keep getting lost for reads the application gave up on.
    static let limit = 65_536

    init(incarnation: UInt64) {
        self.incarnation = incarnation
    }

    /// The name under which to forward the read `context`. `repeating` plants the old bug:
    /// names that every process counts from the same start.
    mutating func name(_ context: [UInt8], repeating: Bool = false) -> [UInt8] {
        if let name = names[context] { return name }
        if waiting.count >= Self.limit { forgetOldest() }
        sent &+= 1
        let name = Self.encode(repeating ? 0 : incarnation, sent)
        waiting[name] = context
        names[context] = name
        return name
    }

    /// The application's context of the read `name` names, if this process sent it and has not
    /// had an answer for it yet.
    mutating func answered(_ name: [UInt8]) -> [UInt8]? {
        guard let context = waiting.removeValue(forKey: name) else { return nil }
        names[context] = nil
        return context
    }

    /// Forgets every read out: a new leader or a new term answers none of them.
    mutating func forgetAll() {
        if !waiting.isEmpty {
            waiting = [:]
            names = [:]
        }
    }

    var count: Int { waiting.count }

    private mutating func forgetOldest() {
        let cutoff = sent &- UInt64(Self.limit / 2)
        waiting = waiting.filter { Self.counter(of: $0.key) > cutoff }
        names = names.filter { waiting[$0.value] != nil }
    }

    private static func encode(_ incarnation: UInt64, _ counter: UInt64) -> [UInt8] {
        withUnsafeBytes(of: incarnation.bigEndian, Array.init) + withUnsafeBytes(of: counter.bigEndian, Array.init)
    }

    private static func counter(of name: [UInt8]) -> UInt64 {
        name.suffix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
