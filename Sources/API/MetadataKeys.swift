/// The metadata keys of the client API, spelled once for the nodes that set them and the
/// client library that reads them.
public enum MetadataKeys {
    /// With UNAVAILABLE from a node that does not lead: the leader it knows, `ID=host:port`.
    public static let leader = "chorus-leader"
    /// With RESOURCE_EXHAUSTED from a node over a limit: when to retry, in milliseconds.
    public static let retryAfterMs = "chorus-retry-after-ms"
    /// On a subscription cut off for reading too slowly: the event id to resume after.
    public static let resumeAfter = "chorus-resume-after"
    /// With UNAVAILABLE from a node that refused a write before proposing it (it does not
    /// lead): the write was not applied, so a client need not count it as possibly done.
    public static let notProposed = "chorus-not-proposed"
    /// From a web gateway (a `web` certificate of the cluster, on the peer listener): the
    /// address of the browser a call is made for, so that per-address limits apply per
    /// person rather than to everyone behind the gateway. Ignored from anyone else.
    public static let clientAddress = "chorus-client-address"
}
