import Testing

/// What a client or the network meets at the edge of a running cluster: sessions and their
/// limits, the trust boundary, hostile and bad input, foreign gRPC clients, abusive clients,
/// follower reads, metrics and health. Serialized, one cluster at a time, and run beside
/// `ClusterTests`: with the fault-injection suite apart, one lane of clusters left a core idle
/// most of the time (1.35 cores on average), and the lane was the length of the whole run.
@Suite(.serialized, .inProcessClusters) struct EdgeTests {}
