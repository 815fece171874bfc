import API
import ClusterPKI
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf

/// Direct calls to one node, bypassing the client library: explicit request ids, raw bytes,
/// made-up methods.
enum RawChat {
    static func withStub<R: Sendable>(_ address: String, security: ClientSecurity, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
        let parts = address.split(separator: ":")
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: String(parts[0]), port: Int(parts[1])!), transportSecurity: security.transportSecurity)
        return try await withGRPCClient(transport: transport) { client in try await body(client) }
    }

    static func send(_ address: String, security: ClientSecurity, clientID: String, sequence: UInt64, token: String, to recipient: String, body: String) async throws -> UInt64 {
        try await withStub(address, security: security) { client in
            try await Chorus_V1_Chat.Client(wrapping: client).sendMessage(.with {
                $0.requestID = .with { $0.clientID = clientID; $0.sequence = sequence }
                $0.token = token
                $0.recipient = recipient
                $0.body = body
            }).messageID
        }
    }

    /// `count` sends from one client id, sequences 1 to `count`, bodies "`body` N".
    static func sends(_ count: Int, clientID: String, token: String, to recipient: String, body: String) -> [Chorus_V1_SendMessageRequest] {
        (1...count).map { n in
            Chorus_V1_SendMessageRequest.with {
                $0.requestID = .with { $0.clientID = clientID; $0.sequence = UInt64(n) }
                $0.token = token
                $0.recipient = recipient
                $0.body = "\(body) \(n)"
            }
        }
    }

    /// Writes `requests` on one `SendStream` call, half-closes, and returns every reply.
    static func sendStream(_ address: String, security: ClientSecurity, _ requests: [Chorus_V1_SendMessageRequest]) async throws -> [Chorus_V1_SendReply] {
        try await withStub(address, security: security) { client in
            try await Chorus_V1_Chat.Client(wrapping: client).sendStream(requestProducer: { writer in
                for request in requests { try await writer.write(request) }
            }, onResponse: { response in
                var replies: [Chorus_V1_SendReply] = []
                for try await reply in response.messages { replies.append(reply) }
                return replies
            })
        }
    }

    /// Writes `requests` on one `ReadStream` call, half-closes, and returns every reply.
    static func readStream(_ address: String, security: ClientSecurity, _ requests: [Chorus_V1_ReadRequest]) async throws -> [Chorus_V1_ReadReply] {
        try await withStub(address, security: security) { client in
            try await Chorus_V1_Chat.Client(wrapping: client).readStream(requestProducer: { writer in
                for request in requests { try await writer.write(request) }
            }, onResponse: { response in
                var replies: [Chorus_V1_ReadReply] = []
                for try await reply in response.messages { replies.append(reply) }
                return replies
            })
        }
    }

    /// Sends `bytes` as the request of `service/method` and returns the status code.
    static func rawCall(_ address: String, security: ClientSecurity, service: String, method: String, bytes: [UInt8]) async throws -> RPCError.Code? {
        try await withStub(address, security: security) { client in
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: bytes),
                    descriptor: MethodDescriptor(fullyQualifiedService: service, method: method),
                    serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults
                ) { try $0.message }
                return nil
            } catch let error as RPCError {
                return error.code
            }
        }
    }
}

struct RawSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct RawDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
