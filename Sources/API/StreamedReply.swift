import GRPCCore

/// A reply on one of the client API's multiplexed streams (`SendStream`, `ReadStream`): it
/// answers one request of many, so a request that fails carries the status its unary call
/// would have ended with, and the stream goes on. Spelled once here for the nodes that write
/// it and the client library that reads it.
public protocol StreamedReply: Sendable {
    var statusCode: Int32 { get set }
    var statusMessage: String { get set }
    /// With UNAVAILABLE from a node that does not lead: the leader it knows (`ID=host:port`).
    var leader: String { get set }
    /// With RESOURCE_EXHAUSTED: when to try again, in milliseconds.
    var retryAfterMs: UInt64 { get set }
}

extension StreamedReply {
    /// Carries `error` as the unary call's status and metadata would.
    public mutating func fail(with error: RPCError) {
        statusCode = Int32(error.code.rawValue)
        statusMessage = error.message
        leader = error.metadata[stringValues: MetadataKeys.leader].first { _ in true } ?? ""
        retryAfterMs = error.metadata[stringValues: MetadataKeys.retryAfterMs].first { _ in true }.flatMap { UInt64($0) } ?? 0
    }

    /// The error the unary call would have thrown; nil when the request succeeded.
    public var error: RPCError? {
        guard statusCode != 0 else { return nil }
        let code = Status.Code(rawValue: Int(statusCode)).flatMap(RPCError.Code.init) ?? .unknown
        var metadata = Metadata()
        if !leader.isEmpty { metadata.addString(leader, forKey: MetadataKeys.leader) }
        if retryAfterMs > 0 { metadata.addString("\(retryAfterMs)", forKey: MetadataKeys.retryAfterMs) }
        return RPCError(code: code, message: statusMessage, metadata: metadata)
    }
}

extension Chorus_V1_SendReply: StreamedReply {}
extension Chorus_V1_ReadReply: StreamedReply {}
