import HTTPTypes
import Hummingbird

/// Refuses a state-changing request that another site could have made the browser send.
///
/// The session cookie is SameSite=Strict already; this is the second lock. Every request that
/// changes something is a POST with a JSON body, which a cross-site form cannot send without
/// a CORS preflight the gateway never grants; and a request whose `Origin` or
/// `Sec-Fetch-Site` names another site is refused outright. WebSocket upgrades are checked
/// the same way (`isSameOrigin`), since browsers send cookies with them.
struct SameOriginGuard<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch request.method {
        case .get, .head:
            return try await next(request, context)
        case .post:
            guard Self.isSameOrigin(request) else {
                throw HTTPError(.forbidden, message: "This request came from another site and was refused.")
            }
            let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            guard type == "application/json" else {
                throw HTTPError(.unsupportedMediaType, message: "Requests that change something must send JSON (Content-Type: application/json).")
            }
            return try await next(request, context)
        default:
            throw HTTPError(.methodNotAllowed, message: "Only GET and POST are used here.")
        }
    }

    /// Whether nothing in the request says it came from another site. Requests without these
    /// headers (curl, tests) are not from a browser page and carry no ambient cookie risk. A
    /// browser's `Origin` is its page's `http(s)://host[:port]` and must be this gateway's
    /// exactly; `null` (a sandboxed or opaque page) is refused. WebSocket libraries outside
    /// browsers send `ws://host` without the port, which no browser sends: the host must match.
    static func isSameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            return false
        }
        let origins = request.headers[values: HTTPField.Name("Origin")!]
        guard !origins.isEmpty else { return true }
        guard let authority = request.head.authority else { return false }
        let host = authority.split(separator: ":").dropLast(authority.contains(":") ? 1 : 0).joined(separator: ":")
        let allowed = ["https://\(authority)", "http://\(authority)", "ws://\(host)", "wss://\(host)"]
        // Every Origin given must be this gateway: a second one cannot smuggle another site in.
        return origins.allSatisfy(allowed.contains)
    }
}
