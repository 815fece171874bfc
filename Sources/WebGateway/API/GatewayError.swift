import Client
import HTTPTypes
import Hummingbird

/// What the cluster said, as an HTTP status and a sentence the page shows as it is.
enum GatewayError {
    static func http(_ error: ChorusError) -> HTTPError {
        switch error {
        case let .notFound(m): HTTPError(.notFound, message: sentence(m))
        case let .alreadyExists(m): HTTPError(.conflict, message: sentence(m))
        case let .wrongCredentials(m): HTTPError(.unauthorized, message: sentence(m))
        case let .notAuthorized(m): HTTPError(.forbidden, message: sentence(m))
        case let .invalidInput(m): HTTPError(.badRequest, message: sentence(m))
        case .clusterUnavailable:
            HTTPError(.serviceUnavailable, message: "The cluster is unavailable right now (it may be electing a new leader), and nothing reached it. Try again in a moment.")
        case .busy:
            HTTPError(.serviceUnavailable, headers: [.retryAfter: "1"], message: "The cluster is busy right now and nothing reached it. Try again in a moment.")
        case .outcomeUnknown:
            // 504: the page keeps the request's id and asks again until it learns the truth.
            HTTPError(.gatewayTimeout, message: "The cluster did not confirm this in time; it may have been done. Still trying…")
        case let .failedPrecondition(m): HTTPError(.conflict, message: sentence(m))
        case .other:
            // Internal details stay in the gateway's log, not on the page.
            HTTPError(.badGateway, message: "The cluster could not do that right now. Try again in a moment.")
        }
    }

    /// Runs a call to the cluster, turning its failures into HTTP answers.
    static func mapping<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        do {
            return try await body()
        } catch let error as ChorusError {
            throw http(error)
        }
    }

    /// "the name 'x' is taken" → "The name 'x' is taken."
    static func sentence(_ message: String) -> String {
        guard let first = message.first else { return "Something went wrong." }
        let body = first.uppercased() + message.dropFirst()
        return body.hasSuffix(".") || body.hasSuffix("?") || body.hasSuffix("!") ? body : body + "."
    }

    static func tooMany(_ what: String, retryAfter: Duration) -> HTTPError {
        let seconds = max(1, Int(retryAfter.components.seconds) + (retryAfter.components.attoseconds > 0 ? 1 : 0))
        return HTTPError(.tooManyRequests, headers: [.retryAfter: "\(seconds)"],
                         message: "Too many \(what) from your address; try again in \(seconds) s.")
    }
}
