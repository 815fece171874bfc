import ClusterPKI

/// How a gateway listens and what it allows one browser.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The gateway's certificate; nil serves plaintext (`chorus-web --insecure`).
    public var tls: TLSFiles?
    public var limits = Limits()
    /// Messages per history page and accounts per directory page.
    public var historyPageSize = 30
    public var accountPageSize = 40
    /// How long the browser keeps its session cookie; the cluster may end the session sooner
    /// (idle or too old), and the page then asks to log in again.
    public var cookieLifetime: Duration = .seconds(30 * 24 * 3600)

    public init() {}

    /// Whether calls to the cluster name the browser's address (the gateway calls the peer
    /// listeners with its `web` certificate, which the nodes believe).
    public var forwardsClientAddresses = false

    /// The bounds one browser (by address) and all of them together can reach.
    public struct Limits: Sendable {
        /// Live (WebSocket) connections in all.
        public var liveConnections = 1_000
        /// Live connections of one session (tabs of one browser).
        public var liveConnectionsPerSession = 8
        /// Live connections from one address, whatever their sessions: one host cannot take
        /// every slot with a few dozen accounts.
        public var liveConnectionsPerAddress = 32
        /// Events waiting for one live connection before it is resynchronised.
        public var liveBuffer = 256
        /// A live connection whose browser takes longer than this to take one event is closed.
        public var liveWriteTimeout: Duration = .seconds(10)
        /// Failed logins per minute from one address.
        public var failedLoginsPerMinute = 20
        /// Accounts created per minute from one address.
        public var accountsPerMinute = 10
        /// Name checks (the registration form asks as you type) per minute from one address.
        public var nameChecksPerMinute = 240
        /// Cluster status checks (the page's status line) per minute from one address.
        public var clusterChecksPerMinute = 30
        /// Seconds an idle HTTP connection stays open.
        public var idleTimeout: Duration = .seconds(60)

        public init() {}
    }
}
