import Foundation
import GRPCCore
import NIOCore
import NIOHPACK

/// gRPC over HTTP/2's header blocks (gRPC's PROTOCOL-HTTP2): what a request's headers must
/// carry, and the response headers and trailers.
enum GRPCHeaders {
    /// A request the transport answers itself, without a handler: its trailers-only response.
    struct Refusal: Error {
        let headers: HPACKHeaders
    }

    /// What a request's headers say.
    struct Request {
        var method: MethodDescriptor
        /// Every header but the pseudo-headers and grpc-timeout.
        var metadata: Metadata
        /// From grpc-timeout: the transport keeps the deadline itself (a timer on the
        /// connection's event loop), so GRPCCore does not start a task per call to sleep it out.
        var timeout: TimeAmount?
    }

    /// The request's method, metadata and deadline, or the refusal to send. `wantsMetadata`
    /// says, from the path, whether the call's handler reads metadata at all (a
    /// `UnaryHandler` does not): pseudo-headers come first in HTTP/2, so the path is known
    /// before the first header that would be kept.
    static func request(_ headers: HPACKHeaders, methods: [String: MethodDescriptor], wantsMetadata: (String?) -> Bool = { _ in true }) -> Result<Request, Refusal> {
        var path: String?
        var timeout: TimeAmount?
        var method: String?
        var contentType: String?
        var encoding: String?
        var metadata = Metadata()
        var keep: Bool?
        for (name, value, _) in headers {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":path": path = value
                case ":method": method = value
                default: break
                }
                continue
            }
            switch name {
            case "content-type": contentType = value
            case "grpc-encoding": encoding = value
            case "grpc-timeout":
                guard let parsed = Self.timeout(value) else {
                    return .failure(Refusal(headers: trailersOnly(Status(code: .invalidArgument, message: "grpc-timeout '\(value)' is not a timeout"), Metadata())))
                }
                timeout = parsed
                continue
            default: break
            }
            if keep == nil {
                keep = wantsMetadata(path)
                if keep == true { metadata.reserveCapacity(headers.count) }
            }
            guard keep == true else { continue }
            if name.hasSuffix("-bin") {
                if let bytes = Self.base64Decoded(value) {
                    metadata.addBinary(bytes, forKey: name)
                } else {
                    metadata.addString(value, forKey: name)
                }
            } else {
                metadata.addString(value, forKey: name)
            }
        }
        if keep == nil { keep = wantsMetadata(path) }
        guard let contentType, contentType.hasPrefix("application/grpc") else {
            // Not gRPC at all: HTTP's own answer (gRPC's status mapping makes it UNKNOWN).
            return .failure(Refusal(headers: [":status": "415"]))
        }
        guard method == "POST" else {
            return .failure(Refusal(headers: trailersOnly(Status(code: .invalidArgument, message: ":method must be POST"), Metadata())))
        }
        if let encoding, encoding != "identity" {
            var headers = trailersOnly(Status(code: .unimplemented, message: "\(encoding) compression is not supported; send messages uncompressed"), Metadata())
            headers.add(name: "grpc-accept-encoding", value: "identity")
            return .failure(Refusal(headers: headers))
        }
        guard let path else {
            return .failure(Refusal(headers: trailersOnly(Status(code: .invalidArgument, message: "the request has no :path"), Metadata())))
        }
        if let descriptor = methods[path] {
            return .success(Request(method: descriptor, metadata: metadata, timeout: timeout))
        }
        // Not a method of this server: the router answers UNIMPLEMENTED, with its own words.
        guard path.utf8.first == UInt8(ascii: "/"), let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.startIndex else {
            return .failure(Refusal(headers: trailersOnly(Status(code: .unimplemented, message: "'\(path)' is not a gRPC method path"), Metadata())))
        }
        let service = String(path[path.index(after: path.startIndex)..<slash])
        let name = String(path[path.index(after: slash)...])
        return .success(Request(method: MethodDescriptor(fullyQualifiedService: service, method: name), metadata: metadata, timeout: timeout))
    }

    /// grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n).
    static func timeout(_ value: String) -> TimeAmount? {
        let utf8 = value.utf8
        guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
        var amount: Int64 = 0
        for digit in utf8.dropLast() {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        switch unit {
        case UInt8(ascii: "H"): return .hours(amount)
        case UInt8(ascii: "M"): return .minutes(amount)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// The status a handler's error becomes, as GRPCCore's executor makes it.
    static func status(of error: any Error) -> (Status, Metadata) {
        if let error = error as? RPCError {
            return (Status(code: Status.Code(error.code), message: error.message), error.metadata)
        }
        if let error = error as? any RPCErrorConvertible {
            return (Status(code: Status.Code(error.rpcErrorCode), message: error.rpcErrorMessage), error.rpcErrorMetadata)
        }
        return (Status(code: .unknown, message: "Service method threw an unknown error."), Metadata())
    }

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    static func responseHeaders(_ metadata: Metadata) -> HPACKHeaders {
        guard !metadata.isEmpty else { return responseHeaders }
        var headers = responseHeaders
        add(metadata, to: &headers)
        return headers
    }

    /// Trailers after a response's headers.
    static func trailers(_ status: Status, _ metadata: Metadata) -> HPACKHeaders {
        if status.code == .ok, status.message.isEmpty, metadata.isEmpty { return okTrailers }
        var headers = HPACKHeaders()
        addStatus(status, to: &headers)
        add(metadata, to: &headers)
        return headers
    }

    /// A response that is only trailers: an answer with no message.
    static func trailersOnly(_ status: Status, _ metadata: Metadata) -> HPACKHeaders {
        var headers = responseHeaders
        addStatus(status, to: &headers)
        add(metadata, to: &headers)
        return headers
    }

    private static func addStatus(_ status: Status, to headers: inout HPACKHeaders) {
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty {
            headers.add(name: "grpc-message", value: percentEncoded(status.message))
        }
    }

    private static func add(_ metadata: Metadata, to headers: inout HPACKHeaders) {
        for (key, value) in metadata {
            let name = key.lowercased()
            // Set from the status and the transport, never from a handler's metadata.
            if name == "grpc-status" || name == "grpc-message" || name.utf8.first == UInt8(ascii: ":") { continue }
            switch value {
            case let .string(text): headers.add(name: name, value: text)
            case let .binary(bytes): headers.add(name: name, value: Data(bytes).base64EncodedString())
            }
        }
    }

    /// grpc-message: printable ASCII except '%' as is, every other byte of the UTF-8 as %XX.
    static func percentEncoded(_ message: String) -> String {
        let plain = message.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E && $0 != UInt8(ascii: "%") }
        if plain { return message }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(message.utf8.count * 2)
        for byte in message.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Binary metadata: base64, padded or not (gRPC allows both).
    static func base64Decoded(_ text: String) -> [UInt8]? {
        var text = text
        let remainder = text.utf8.count % 4
        if remainder == 2 { text += "==" } else if remainder == 3 { text += "=" }
        return Data(base64Encoded: text).map { [UInt8]($0) }
    }
}
