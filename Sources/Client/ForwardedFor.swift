import API
import GRPCCore

/// The address of the person a call is made for, when the caller serves many (a web
/// gateway). Set it around the calls of one person's request; the library sends it with each
/// unary call, and nodes believe it only from a `web` certificate of their cluster. Calls
/// multiplexed on a shared stream (sends, reads) cannot carry it.
public enum ForwardedFor {
    @TaskLocal public static var address: String?

    /// The metadata of a unary call: the forwarded address, if any.
    static var metadata: Metadata {
        var metadata = Metadata()
        if let address { metadata.addString(address, forKey: MetadataKeys.clientAddress) }
        return metadata
    }
}
