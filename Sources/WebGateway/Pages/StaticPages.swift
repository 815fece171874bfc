import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The single-page app: a handful of files shipped in the module's resources, read once at
/// start and served from memory. Only those names are served, so no request path reaches the
/// file system. Browsers revalidate them with the ETag, and get 304 when nothing changed.
struct StaticPages: Sendable {
    struct File: Sendable {
        var bytes: ByteBuffer
        var contentType: String
        var etag: String
    }

    let files: [String: File]

    static let types = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml",
    ]

    /// Reads every file of `Public/` in the module's resources.
    static func load() throws -> StaticPages {
        guard let folder = Bundle.module.url(forResource: "Public", withExtension: nil) else {
            throw HTTPError(.internalServerError, message: "the web page's files are missing from the build")
        }
        var files: [String: File] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let ext = String(name.split(separator: ".").last ?? "")
            guard let type = types[ext] else { continue }
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            files[name] = File(bytes: ByteBuffer(bytes: data), contentType: type, etag: "\"\(String(hash, radix: 16))\"")
        }
        guard files["index.html"] != nil else { throw HTTPError(.internalServerError, message: "index.html is missing from the web page's files") }
        return StaticPages(files: files)
    }

    func add(to router: Router<GatewayContext>) {
        router.get("/") { request, _ in try respond("index.html", request) }
        router.get(":file") { request, context in try respond(try context.parameters.require("file"), request) }
    }

    func respond(_ name: String, _ request: Request) throws -> Response {
        guard let file = files[name] else { throw HTTPError(.notFound, message: "There is no page here.") }
        var headers: HTTPFields = [.contentType: file.contentType, .eTag: file.etag, .cacheControl: "no-cache"]
        if request.headers[.ifNoneMatch] == file.etag {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.bytes.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }
}
