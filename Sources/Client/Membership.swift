import API
import ClusterPKI
import GRPCCore
import GRPCNIOTransportHTTP2

/// One member as a node reports it.
public struct MemberInfo: Sendable, Equatable {
    public var id: UInt64
    public var voter: Bool
    public var peerAddress: String
    public var clientAddress: String
    /// The leader's view: last index held, and heard from lately.
    public var matchIndex: UInt64
    public var active: Bool
}

/// The membership as one node reports it.
public struct Membership: Sendable, Equatable {
    public var nodeID: UInt64
    public var leaderID: UInt64
    public var term: UInt64
    public var commitIndex: UInt64
    public var lastIndex: UInt64
    public var members: [MemberInfo]

    init(_ r: Chorus_V1_MembersResponse) {
        nodeID = r.nodeID
        leaderID = r.leaderID
        term = r.term
        commitIndex = r.commitIndex
        lastIndex = r.lastIndex
        members = r.members.map { MemberInfo(id: $0.id, voter: $0.voter, peerAddress: $0.peerAddress, clientAddress: $0.clientAddress, matchIndex: $0.matchIndex, active: $0.active) }
    }
}

/// Operator calls on a running cluster through its peer listeners (the Admin API, an
/// operator certificate with TLS). Membership changes go to the leader: each call tries the
/// endpoints until one leads.
public struct ClusterAdmin: Sendable {
    public let endpoints: [String]
    public let credentials: TLSFiles?
    public let timeout: Duration

    public init(endpoints: [String], operator credentials: TLSFiles?, timeout: Duration = .seconds(150)) {
        self.endpoints = endpoints
        self.credentials = credentials
        self.timeout = timeout
    }

    /// The leader's view when it answers, else the first node's that does.
    public func members() async throws -> Membership {
        var answers: [Membership] = []
        var lastError = "no endpoint given"
        for endpoint in endpoints {
            do {
                answers.append(try await call(endpoint) { try await $0.members(.init(), options: $1) }.map(Membership.init).get())
            } catch {
                lastError = "\(endpoint): \(error)"
            }
        }
        if let leader = answers.first(where: { $0.nodeID == $0.leaderID }) { return leader }
        guard let any = answers.first else { throw ChorusError.clusterUnavailable(lastError) }
        return any
    }

    public func add(id: UInt64, peerAddress: String, clientAddress: String, promoteWhenCaughtUp: Bool) async throws -> (index: UInt64, promoted: Bool, members: Membership) {
        let response = try await onLeader { stub, options in
            try await stub.addMember(.with {
                $0.id = id
                $0.peerAddress = peerAddress
                $0.clientAddress = clientAddress
                $0.promoteWhenCaughtUp = promoteWhenCaughtUp
            }, options: options)
        }
        return (response.index, response.promoted, Membership(response.members))
    }

    public func promote(id: UInt64) async throws -> (index: UInt64, members: Membership) {
        let response = try await onLeader { try await $0.promoteMember(.with { $0.id = id }, options: $1) }
        return (response.index, Membership(response.members))
    }

    public func remove(id: UInt64, force: Bool) async throws -> (index: UInt64, members: Membership) {
        let response = try await onLeader { try await $0.removeMember(.with { $0.id = id; $0.force = force }, options: $1) }
        return (response.index, Membership(response.members))
    }

    /// Hands leadership to `to`; returns the new leader, its term and how long it took.
    public func transferLeadership(to: UInt64) async throws -> (leader: UInt64, term: UInt64, milliseconds: UInt64) {
        let response = try await onLeader { try await $0.transferLeadership(.with { $0.to = to }, options: $1) }
        return (response.leaderID, response.term, response.durationMs)
    }

    // MARK: Calls

    typealias Stub = Chorus_V1_Admin.Client<HTTP2ClientTransport.Posix>

    func call<R: Sendable>(_ endpoint: String, _ body: @Sendable (Stub, CallOptions) async throws -> R) async throws -> Result<R, RPCError> {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            throw ChorusError.invalidInput("endpoint '\(endpoint)' is not host:port")
        }
        let transport = try HTTP2ClientTransport.Posix(target: ClientSecurity.target(host: String(endpoint[..<colon]), port: port),
                                                       transportSecurity: credentials?.mutualClientSecurity() ?? .plaintext)
        var options = CallOptions.defaults
        options.timeout = timeout
        return try await withGRPCClient(transport: transport) { client in
            do {
                return .success(try await body(Chorus_V1_Admin.Client(wrapping: client), options))
            } catch let error as RPCError {
                return .failure(error)
            }
        }
    }

    /// Runs `body` on whichever endpoint leads; a refusal (bad request, precondition) ends it.
    func onLeader<R: Sendable>(_ body: @escaping @Sendable (Stub, CallOptions) async throws -> R) async throws -> R {
        var reasons: [String] = []
        for attempt in 0..<3 {
            for endpoint in endpoints {
                switch try await call(endpoint, body) {
                case let .success(value):
                    return value
                case let .failure(error) where error.code == .unavailable || error.code == .deadlineExceeded:
                    reasons.append("\(endpoint): \(error.message)")
                case let .failure(error):
                    throw ChorusError(error)
                }
            }
            try await Task.sleep(for: .milliseconds(300 * (attempt + 1)))
        }
        throw ChorusError.clusterUnavailable("no endpoint took the call as leader: \(reasons.suffix(endpoints.count).joined(separator: "; "))")
    }
}
