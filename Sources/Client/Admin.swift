import API
import ClusterPKI
import GRPCCore
import GRPCNIOTransportHTTP2

/// A snapshot a node took on request.
public struct TakenSnapshot: Sendable {
    public var index: UInt64
    public var term: UInt64
    public var sizeBytes: UInt64
    /// The first index the node's log still holds.
    public var logFirstIndex: UInt64
    public var durationMilliseconds: UInt64
}

/// Asks the node at `endpoint` (its peer address: this node, not the leader) to snapshot its
/// projections now and compact its log behind the snapshot. With TLS, `operator` holds an
/// operator certificate of the cluster.
public func takeSnapshot(endpoint: String, operator credentials: TLSFiles? = nil, timeout: Duration = .seconds(60)) async throws -> TakenSnapshot {
    guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
        throw ChorusError.invalidInput("endpoint '\(endpoint)' is not host:port")
    }
    let transport = try HTTP2ClientTransport.Posix(target: ClientSecurity.target(host: String(endpoint[..<colon]), port: port), transportSecurity: credentials?.mutualClientSecurity() ?? .plaintext)
    return try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = timeout
        do {
            let response = try await Chorus_V1_Admin.Client(wrapping: client).takeSnapshot(.init(), options: options)
            return TakenSnapshot(index: response.index, term: response.term, sizeBytes: response.sizeBytes,
                                 logFirstIndex: response.logFirstIndex, durationMilliseconds: response.durationMs)
        } catch let error as RPCError {
            throw error.code == .unavailable ? ChorusError.clusterUnavailable("\(endpoint): \(error.message)") : ChorusError.other("\(endpoint): \(error.message)")
        }
    }
}
