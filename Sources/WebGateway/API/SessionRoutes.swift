import Client
import Hummingbird
import RateLimit

/// Accounts and sessions: register, check a name, log in and out, who am I, delete the account.
struct SessionRoutes: Sendable {
    let services: GatewayServices

    func add(to api: RouterGroup<GatewayContext>) {
        api.get("session", use: current)
        api.post("session", use: login)
        api.post("session/end", use: logout)
        api.get("names/:name", use: checkName)
        api.post("accounts", use: register)
        api.post("account/delete", use: deleteAccount)
    }

    /// Who the cookie says is logged in. The cluster is asked only when it is used, so a
    /// session that ended shows up as 401 at the next call.
    @Sendable func current(_ request: Request, _ context: GatewayContext) async throws -> SessionInfo {
        SessionInfo(name: try SessionCookie.require(request).user, unread: nil)
    }

    @Sendable func login(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let form = try await request.decode(as: Credentials.self, context: context)
        // Taken before the cluster checks the password, given back when it was right: guesses
        // sent at once pass no more than the limit.
        if let wait = services.failedLogins.take(context.remoteAddress) { throw GatewayError.tooMany("failed logins", retryAfter: wait) }
        do {
            let session = try await GatewayError.mapping { try await services.client.login(name: form.name, password: form.password) }
            services.failedLogins.giveBack(context.remoteAddress)
            return try started(session, status: .ok, request, context)
        } catch let error as HTTPError where error.status == .unauthorized || error.status == .notFound {
            // Whether the name exists is not told apart from a wrong password.
            throw HTTPError(.unauthorized, message: "Wrong name or password.")
        } catch {
            services.failedLogins.giveBack(context.remoteAddress)
            throw error
        }
    }

    @Sendable func register(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let form = try await request.decode(as: Credentials.self, context: context)
        guard form.password.utf8.count >= 8 else { throw HTTPError(.badRequest, message: "Choose a password of at least 8 characters.") }
        guard form.password.utf8.count <= 1024 else { throw HTTPError(.badRequest, message: "Choose a password of at most 1024 bytes.") }
        if let wait = services.accountCreations.take(context.remoteAddress) { throw GatewayError.tooMany("new accounts", retryAfter: wait) }
        try await GatewayError.mapping { try await services.client.createAccount(name: form.name, password: form.password) }
        let session = try await GatewayError.mapping { try await services.client.login(name: form.name, password: form.password) }
        return try started(session, status: .created, request, context)
    }

    /// Logs out: the cookie is cleared whatever the cluster answers (the page says "logged
    /// out", and a reload must not log back in); a logout the cluster did not confirm is
    /// retried in the background until the session has ended.
    @Sendable func logout(_ request: Request, _ context: GatewayContext) async throws -> Response {
        if let session = SessionCookie(request) {
            await services.logouts.end(session.token)
        }
        var response = Response(status: .noContent)
        response.setCookie(SessionCookie.cleared(secure: services.secure))
        return response
    }

    @Sendable func checkName(_ request: Request, _ context: GatewayContext) async throws -> NameCheck {
        let name = try context.parameters.decoded("name")
        if let wait = services.nameChecks.take(context.remoteAddress) { throw GatewayError.tooMany("name checks", retryAfter: wait) }
        let (available, reason) = try await GatewayError.mapping { try await services.client.checkUsername(name) }
        return NameCheck(available: available, reason: reason.map(GatewayError.sentence))
    }

    /// Deletes the account after the password is given again.
    @Sendable func deleteAccount(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let session = try SessionCookie.require(request)
        let form = try await request.decode(as: PasswordForm.self, context: context)
        if let wait = services.failedLogins.take(context.remoteAddress) { throw GatewayError.tooMany("wrong passwords", retryAfter: wait) }
        do {
            try await GatewayError.mapping { try await services.client.deleteAccount(token: session.token, password: form.password) }
            services.failedLogins.giveBack(context.remoteAddress)
        } catch let error as HTTPError where error.status == .unauthorized {
            throw HTTPError(.forbidden, message: "That password is not right; the account was not deleted.")
        } catch {
            services.failedLogins.giveBack(context.remoteAddress)
            throw error
        }
        var response = Response(status: .noContent)
        response.setCookie(SessionCookie.cleared(secure: services.secure))
        return response
    }

    /// The answer to a login or registration: who, how many messages wait, and the cookie.
    func started(_ session: Session, status: HTTPResponse.Status, _ request: Request, _ context: GatewayContext) throws -> Response {
        var response = try SessionInfo(name: session.name, unread: session.unreadCount).response(from: request, context: context)
        response.status = status
        response.setCookie(SessionCookie(user: session.name, token: session.token).cookie(secure: services.secure, lifetime: services.configuration.cookieLifetime))
        return response
    }
}
