import ClusterPKI
import GRPCCore
import GRPCNIOTransportHTTP2

extension ServerContext {
    /// Who the caller's certificate says it is, on a listener with mutual TLS; nil on a
    /// plaintext listener or for a certificate that names no identity.
    var peerIdentity: Identity? {
        guard let context = transportSpecific as? HTTP2ServerTransport.Posix.Context,
              let certificate = context.peerCertificate
        else { return nil }
        return Identity(certificate: certificate)
    }

    /// The node id the caller's certificate proves, or PERMISSION_DENIED.
    func authenticatedNode(of cluster: String) throws -> UInt64 {
        guard case let .node(certificateCluster, id)? = peerIdentity, certificateCluster == cluster else {
            throw RPCError(code: .permissionDenied, message: "the peer API needs a node certificate of cluster '\(cluster)' (\(peerIdentity.map { "got \($0)" } ?? "none presented"))")
        }
        return id
    }
}
