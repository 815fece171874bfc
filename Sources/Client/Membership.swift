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
/// operator certificate with TLS). Every node is asked at once, each with its own deadline,
/// so a node that is stopped (its kernel still accepts connections) or slow costs one
/// deadline, never the operator's afternoon; the ones that did not answer are named.
/// Membership changes then go to the node that leads.
public struct ClusterAdmin: Sendable {
    public let endpoints: [String]
    public let credentials: TLSFiles?
    /// How long a membership change may take (adding with promotion waits for the catch-up).
    public let timeout: Duration
    /// How long one node has to answer a question (who leads, who is a member).
    public let answerWithin: Duration

    public init(endpoints: [String], operator credentials: TLSFiles?, timeout: Duration = .seconds(150), answerWithin: Duration = .seconds(5)) {
        self.endpoints = endpoints
        self.credentials = credentials
        self.timeout = timeout
        self.answerWithin = answerWithin
    }

    /// What every endpoint said about the membership, asked at once.
    public struct Survey: Sendable {
        /// The answers, by endpoint, in the order the endpoints were given.
        public var answers: [(endpoint: String, membership: Membership)]
        /// The endpoints that did not answer, and why, in the order given.
        public var silent: [(endpoint: String, reason: String)]

        /// The leader's own view when it answered, else the view of the newest term.
        public var best: Membership? {
            answers.filter { $0.membership.nodeID == $0.membership.leaderID && $0.membership.leaderID != 0 }
                .max { $0.membership.term < $1.membership.term }?.membership
                ?? answers.max { $0.membership.term < $1.membership.term }?.membership
        }

        /// The endpoint of the node that says it leads, in the newest term when two do (one
        /// has not heard yet that it was deposed).
        public var leaderEndpoint: String? {
            answers.filter { $0.membership.nodeID == $0.membership.leaderID && $0.membership.leaderID != 0 }
                .max { $0.membership.term < $1.membership.term }?.endpoint
        }

        /// "a:1 (why), b:2 (why)", for messages.
        public var silentSummary: String {
            silent.map { "\($0.endpoint) (\($0.reason))" }.joined(separator: "; ")
        }
    }

    /// Asks every endpoint for its view of the membership, all at once.
    public func survey() async -> Survey {
        let results = await withTaskGroup(of: (Int, Result<Membership, ChorusError>).self) { group in
            for (position, endpoint) in endpoints.enumerated() {
                group.addTask {
                    do {
                        let answer = try await call(endpoint, within: answerWithin) { try await $0.members(.init(), options: $1) }
                        return (position, answer.map(Membership.init).mapError { explain($0) })
                    } catch let error as ChorusError {
                        return (position, .failure(error))
                    } catch {
                        return (position, .failure(.clusterUnavailable("\(error)")))
                    }
                }
            }
            var results: [(Int, Result<Membership, ChorusError>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
        var survey = Survey(answers: [], silent: [])
        for (position, result) in results {
            switch result {
            case let .success(membership): survey.answers.append((endpoints[position], membership))
            case let .failure(error): survey.silent.append((endpoints[position], error.description))
            }
        }
        return survey
    }

    /// The leader's view when it answers, else the newest one; fails naming every endpoint
    /// when none answers.
    public func members() async throws -> Membership {
        let survey = await survey()
        guard let best = survey.best else {
            throw ChorusError.clusterUnavailable("no node answered: \(survey.silentSummary)")
        }
        return best
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

    /// One call to `endpoint`, ended after `limit` whatever the connection does (a stopped
    /// process's kernel completes the TCP handshake, and nothing else ever comes).
    func call<R: Sendable>(_ endpoint: String, within limit: Duration, _ body: @escaping @Sendable (Stub, CallOptions) async throws -> R) async throws -> Result<R, RPCError> {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            throw ChorusError.invalidInput("endpoint '\(endpoint)' is not host:port")
        }
        let host = String(endpoint[..<colon])
        let security = credentials?.mutualClientSecurity() ?? .plaintext
        return try await withThrowingTaskGroup(of: Result<R, RPCError>?.self) { group in
            group.addTask {
                let transport = try HTTP2ClientTransport.Posix(target: ClientSecurity.target(host: host, port: port), transportSecurity: security)
                var options = CallOptions.defaults
                options.timeout = limit
                return try await withGRPCClient(transport: transport) { client in
                    do {
                        return .success(try await body(Chorus_V1_Admin.Client(wrapping: client), options))
                    } catch let error as RPCError {
                        return .failure(error)
                    }
                }
            }
            group.addTask {
                // A little past the call's own deadline: this bound is for a connection that
                // never completes, not for a slow answer.
                try await Task.sleep(for: limit + .seconds(1))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(RPCError(code: .deadlineExceeded, message: "no answer within \(Self.seconds(limit)) (the node may be stopped or overloaded)"))
        }
    }

    /// What an operator should read for a failed call: the transport's words, and for the
    /// failures an operator can fix, what to do.
    func explain(_ error: RPCError) -> ChorusError {
        let message = error.message
        // The transport reports a refused handshake as a connection closed before HTTP/2
        // began, whichever side refused it.
        let closedEarly = message.contains("connection preface") || message.contains("closed the connection")
        if credentials == nil, closedEarly {
            return .clusterUnavailable("the node closed the connection before speaking gRPC: its peer port needs TLS; give --ca, --cert and --key (an operator certificate: `chorus-tools certs operator`)")
        }
        if credentials != nil, closedEarly || message.lowercased().contains("handshake") || message.contains("certificate") || message.contains("SSL") {
            return .clusterUnavailable("the TLS handshake failed (\(message)); check that --ca is this cluster's CA, that --cert and --key are an operator certificate it signed, and that this is a peer port")
        }
        return ChorusError(error)
    }

    static func seconds(_ duration: Duration) -> String {
        let c = duration.components
        return c.attoseconds == 0 ? "\(c.seconds) s" : "\(Double(c.seconds) + Double(c.attoseconds) / 1e18) s"
    }

    /// Runs `body` on the node that leads, found by asking every endpoint at once; asks again
    /// while an election is under way or leadership moves. A refusal (bad request,
    /// precondition) ends it.
    func onLeader<R: Sendable>(_ body: @escaping @Sendable (Stub, CallOptions) async throws -> R) async throws -> R {
        var reasons: [String] = []
        for attempt in 0..<4 {
            let survey = await survey()
            if let endpoint = survey.leaderEndpoint {
                switch try await call(endpoint, within: timeout, body) {
                case let .success(value):
                    return value
                case let .failure(error) where error.code == .unavailable || error.code == .deadlineExceeded:
                    reasons = ["\(endpoint): \(explain(error))"]
                case let .failure(error):
                    throw explain(error)
                }
            } else if survey.answers.isEmpty {
                reasons = ["no node answered: \(survey.silentSummary)"]
            } else {
                let leader = survey.best?.leaderID ?? 0
                reasons = [leader == 0 ? "no node leads right now (an election may be under way)"
                    : "node \(leader) leads, but none of the endpoints given is its peer address"]
                if !survey.silent.isEmpty { reasons.append("no answer from \(survey.silentSummary)") }
            }
            try await Task.sleep(for: .milliseconds(300 * (attempt + 1)))
        }
        throw ChorusError.clusterUnavailable("no endpoint took the call as leader: \(reasons.joined(separator: "; "))")
    }
}
