import API
import Foundation
import GRPCCore
import Projections
import RateLimit

/// Who is calling. Every request that acts as a user names a session; the node checks it in
/// its own projections before it does anything for the caller, so that nothing a caller
/// without a live session sends reaches the log. Apply checks the session again, and its
/// verdict is the one that counts: this check only keeps strangers out.
extension ChatService {
    /// What a write may do once its session has been looked at.
    enum WriteAdmission {
        /// The session is live here: propose, with the token's hash.
        case propose(tokenHash: [UInt8])
        /// The request was applied before, and this was its value: a retry whose first
        /// attempt committed gets that outcome whatever became of its session since.
        case answered(UInt64)
    }

    /// Admits a write acting as `token`'s session. A session this node knows and that has not
    /// ended is admitted at once, without a round trip: the log decides in the end. Otherwise,
    /// after a barrier (the node may be a new leader that has not applied the login yet), a
    /// request the log already answered gets that answer; a session now found is admitted;
    /// anything else is UNAUTHENTICATED and counts against the caller's address.
    func admitWrite(_ requestID: Chorus_V1_RequestID, token: String, _ context: ServerContext) async throws -> WriteAdmission {
        let hash = try tokenHash(token, context)
        if try liveSession(hash) != nil { return .propose(tokenHash: hash) }
        try check(unauthenticated, context, "requests without a live session")
        try await barrier()
        if let outcome = try state.recordedOutcome(clientID: requestID.clientID, sequence: requestID.sequence) {
            switch outcome {
            case let .success(value): return .answered(value)
            case let .failure(rejection): throw rejection.rpcError
            }
        }
        if try liveSession(hash) != nil { return .propose(tokenHash: hash) }
        throw refuseUnauthenticated(context, "the session token is unknown or has ended; log in again")
    }

    /// The same check for one send of a send stream, without a task: nil when the session is
    /// live here (propose at once); otherwise the caller takes `admitWrite`'s slower path.
    func admitsAtOnce(_ token: String) -> [UInt8]? {
        guard let hash = Self.hash(of: token) else { return nil }
        return (try? liveSession(hash)) != nil ? hash : nil
    }

    /// The hash of a well-formed token (32 bytes, as `TokenText` writes them); nil otherwise.
    static func hash(of token: String) -> [UInt8]? {
        guard let bytes = TokenText.decode(token), bytes.count == 32 else { return nil }
        return Credentials.tokenHash(bytes)
    }

    /// The session behind `hash` in this node's projections, if it has not ended by this
    /// node's clock (apply ends it by the log's clock the same way).
    func liveSession(_ hash: [UInt8]) throws -> SessionRow? {
        guard let session = try state.session(tokenHash: hash) else { return nil }
        return session.hasEnded(at: Int64(Date().timeIntervalSince1970 * 1000)) ? nil : session
    }

    /// The live session behind `token`, read after a barrier.
    func authenticate(_ token: String, _ context: ServerContext) async throws -> SessionRow {
        let hash = try tokenHash(token, context)
        // A stranger's guesses are bounded before they cost a round trip.
        if try liveSession(hash) == nil { try check(unauthenticated, context, "requests without a live session") }
        if !configuration.plantedBugs.localReads { try await barrier() }
        guard let session = try state.session(tokenHash: hash) else {
            throw refuseUnauthenticated(context, "the session token is unknown or has ended; log in again")
        }
        // Ended by this node's clock; the log's clock ends it for writes the same way.
        guard !session.hasEnded(at: Int64(Date().timeIntervalSince1970 * 1000)) else {
            throw refuseUnauthenticated(context, "the session has expired; log in again")
        }
        return session
    }

    /// The hash of a well-formed token; a malformed one is refused and counted.
    func tokenHash(_ token: String, _ context: ServerContext) throws -> [UInt8] {
        guard let hash = Self.hash(of: token) else {
            throw refuseUnauthenticated(context, "the session token is missing or malformed; log in to get one")
        }
        return hash
    }

    /// UNAUTHENTICATED, counted in the metrics and against the caller's address.
    func refuseUnauthenticated(_ context: ServerContext, _ message: String) -> RPCError {
        metrics.unauthenticatedRequests.increment()
        _ = unauthenticated.take(source(of: context))
        return RPCError(code: .unauthenticated, message: message)
    }
}
