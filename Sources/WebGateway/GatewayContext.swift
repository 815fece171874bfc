import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of every route and of the WebSocket upgrade.
public struct GatewayContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The address the request came from; rate limits are kept per address.
    public let remoteAddress: String

    /// Request bodies are small JSON documents: the largest is a 64 KiB message, which JSON
    /// escaping can at most double, with room for the rest.
    public static let maxRequestBytes = 160 * 1024

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    public var maxUploadSize: Int { Self.maxRequestBytes }
}

extension Parameters {
    /// A path parameter with its percent-escapes decoded (`al%20ice` is `al ice`), so the
    /// cluster judges the name the user typed.
    func decoded(_ name: String) throws -> String {
        let raw = try require(name)
        guard let text = raw.removingPercentEncoding else {
            throw HTTPError(.badRequest, message: "The address has a malformed %-escape.")
        }
        return text
    }
}
