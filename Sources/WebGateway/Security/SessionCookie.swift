import Foundation
import Hummingbird

/// The browser's session: the account name and the cluster's session token, in one
/// HttpOnly, SameSite=Strict cookie. The page's scripts never see the token, and another site
/// cannot make the browser send it. The name is only for display: every call is authorised
/// by the token, so a browser that edits the name fools only itself.
struct SessionCookie: Sendable, Equatable {
    static let name = "chorus_session"

    var user: String
    var token: String

    init(user: String, token: String) {
        self.user = user
        self.token = token
    }

    /// The session a request carries, or nil when it carries none or a malformed one.
    init?(_ request: Request) {
        guard let value = request.cookies[Self.name]?.value, value.utf8.count <= 256,
              let colon = value.lastIndex(of: ":")
        else { return nil }
        let user = String(value[..<colon])
        let token = String(value[value.index(after: colon)...])
        guard !user.isEmpty, user.utf8.count <= 32, user.utf8.allSatisfy(Self.isNameByte),
              !token.isEmpty, token.utf8.allSatisfy(Self.isTokenByte)
        else { return nil }
        self.init(user: user, token: token)
    }

    /// The session of a request, or 401 in words.
    static func require(_ request: Request) throws -> SessionCookie {
        guard let session = SessionCookie(request) else {
            throw HTTPError(.unauthorized, message: "You are not logged in.")
        }
        return session
    }

    func cookie(secure: Bool, lifetime: Duration) -> Cookie {
        Cookie(name: Self.name, value: "\(user):\(token)", maxAge: Int(lifetime.components.seconds), path: "/",
               secure: secure, httpOnly: true, sameSite: .strict)
    }

    /// A cookie that makes the browser forget the session.
    static func cleared(secure: Bool) -> Cookie {
        Cookie(name: name, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }

    static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
    }

    /// Tokens are base64url.
    static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }
}
