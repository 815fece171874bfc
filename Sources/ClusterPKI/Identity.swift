import X509

/// Who a certificate speaks for. Every certificate the cluster's CA signs names its holder
/// in a SAN URI: `chorus://CLUSTER/node/ID` for a node, `chorus://CLUSTER/operator/NAME` for
/// an operator, `chorus://CLUSTER/web/NAME` for a web gateway (a server certificate for
/// browsers; it opens no door on the nodes). The peer listener trusts a peer's claimed node
/// id only as far as this says.
public enum Identity: Sendable, Equatable, CustomStringConvertible {
    case node(cluster: String, id: UInt64)
    case `operator`(cluster: String, name: String)
    case web(cluster: String, name: String)

    public var uri: String {
        switch self {
        case let .node(cluster, id): "chorus://\(cluster)/node/\(id)"
        case let .operator(cluster, name): "chorus://\(cluster)/operator/\(name)"
        case let .web(cluster, name): "chorus://\(cluster)/web/\(name)"
        }
    }

    public var cluster: String {
        switch self {
        case let .node(cluster, _), let .operator(cluster, _), let .web(cluster, _): cluster
        }
    }

    public var description: String {
        switch self {
        case let .node(cluster, id): "node \(id) of cluster '\(cluster)'"
        case let .operator(cluster, name): "operator '\(name)' of cluster '\(cluster)'"
        case let .web(cluster, name): "web gateway '\(name)' of cluster '\(cluster)'"
        }
    }

    /// Parses `chorus://CLUSTER/node/ID` or `chorus://CLUSTER/operator/NAME`.
    public init?(uri: String) {
        guard uri.hasPrefix("chorus://") else { return nil }
        let parts = uri.dropFirst("chorus://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[2].isEmpty else { return nil }
        switch parts[1] {
        case "node":
            guard let id = UInt64(parts[2]), id > 0 else { return nil }
            self = .node(cluster: String(parts[0]), id: id)
        case "operator":
            self = .operator(cluster: String(parts[0]), name: String(parts[2]))
        case "web":
            self = .web(cluster: String(parts[0]), name: String(parts[2]))
        default:
            return nil
        }
    }

    /// The identity a certificate names, if it names exactly one.
    public init?(certificate: Certificate) {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        let identities = names.compactMap { name -> Identity? in
            if case let .uniformResourceIdentifier(uri) = name { return Identity(uri: uri) }
            return nil
        }
        guard identities.count == 1 else { return nil }
        self = identities[0]
    }
}
