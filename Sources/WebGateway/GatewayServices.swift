import Client
import RateLimit

/// What every route shares: the cluster's client, the configuration and the limits' state.
struct GatewayServices: Sendable {
    let client: ChorusClient
    let configuration: GatewayConfiguration
    let failedLogins: RateLimiter
    let accountCreations: RateLimiter
    let nameChecks: RateLimiter
    let clusterChecks: RateLimiter
    let live: LiveConnections
    /// Logouts the cluster has not confirmed yet, retried in the background.
    let logouts: PendingLogouts

    init(client: ChorusClient, configuration: GatewayConfiguration) {
        self.client = client
        self.configuration = configuration
        let limits = configuration.limits
        failedLogins = RateLimiter(perMinute: limits.failedLoginsPerMinute)
        accountCreations = RateLimiter(perMinute: limits.accountsPerMinute)
        nameChecks = RateLimiter(perMinute: limits.nameChecksPerMinute)
        clusterChecks = RateLimiter(perMinute: limits.clusterChecksPerMinute)
        live = LiveConnections(limit: limits.liveConnections, perSession: limits.liveConnectionsPerSession, perAddress: limits.liveConnectionsPerAddress)
        logouts = PendingLogouts(client: client)
    }

    /// Cookies are marked Secure when the page is served over TLS.
    var secure: Bool { configuration.tls != nil }
}
