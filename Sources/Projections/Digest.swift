import Crypto
import LMDB
import SwiftProtobuf

/// Canonical views of the tables: the digest that tells two replicas agree, and the ordered
/// rows the tools diff when they do not.
extension ChatState {
    /// Table names in canonical order.
    public static var tableNames: [String] { Tables.names }

    /// SHA-256 over every table in canonical order, every row in key order, each key and
    /// value length-prefixed. Equal states give equal digests on every machine.
    public func digest() throws -> String {
        var hasher = SHA256()
        try environment.read { txn in
            for table in tables.all {
                if Tables.versionThreeNames.contains(table.name), try txn.count(table) == 0 { continue }
                hasher.update(data: Self.framed(Array(table.name.utf8)))
                try txn.withCursor(table) { cursor in
                    var row = try cursor.first()
                    while let current = row {
                        if !Self.describesTheFile(table.name, current.key) {
                            hasher.update(data: Self.framed(current.key))
                            hasher.update(data: Self.framed(current.value))
                        }
                        row = try cursor.next()
                    }
                }
            }
        }
        return hasher.finalize().map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// Whether a row describes the file rather than the state (its format version): replicas
    /// with equal states but files of different builds have equal digests.
    static func describesTheFile(_ table: String, _ key: [UInt8]) -> Bool {
        table == "meta" && key == Tables.formatKey
    }

    /// Calls `body` with every row of `table` in key order, as raw bytes, less those that
    /// describe the file.
    public func forEachRow(in table: String, _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Void) throws {
        guard let database = tables.all.first(where: { $0.name == table }) else {
            // A table of a later cluster version, absent from a file an older build wrote: empty.
            if Tables.names.contains(table) { return }
            throw Rejection(.notFound, "there is no table '\(table)'; tables: \(Tables.names.joined(separator: ", "))")
        }
        try environment.read { txn in
            try txn.withCursor(database) { cursor in
                var row = try cursor.first()
                while let current = row {
                    if !Self.describesTheFile(table, current.key) { try body(current.key, current.value) }
                    row = try cursor.next()
                }
            }
        }
    }

    /// A one-line, human-readable rendering of a row, for dumps and diffs.
    public static func describeRow(table: String, key: [UInt8], value: [UInt8]) -> String {
        let keyText: String
        switch table {
        case "users", "clients", "meta", "group-names":
            keyText = String(decoding: key, as: UTF8.self)
        case "former-users":
            // The name's length, the name, the id the account had.
            let length = Int(key.first ?? 0)
            keyText = String(decoding: key.dropFirst().prefix(length), as: UTF8.self) + "/" + (UInt64(bigEndianBytes: key, at: 1 + length).map(String.init) ?? "?")
        case "sessions":
            keyText = key.prefix(6).map { String($0, radix: 16).leftPadded(to: 2) }.joined() + "…"
        default:
            keyText = stride(from: 0, to: key.count, by: 8).map { offset in
                UInt64(bigEndianBytes: key, at: offset).map(String.init) ?? key[offset...].map { String($0, radix: 16) }.joined()
            }.joined(separator: "/")
        }
        let valueText: String
        do {
            switch table {
            case "meta": valueText = UInt64(bigEndianBytes: value).map(String.init) ?? "\(value)"
            case "users": valueText = try redacted(UserRow(serializedBytes: value)).textFormatString()
            case "messages": valueText = try MessageRow(serializedBytes: value).textFormatString()
            case "groups": valueText = try GroupRow(serializedBytes: value).textFormatString()
            case "group-members": valueText = try MemberRow(serializedBytes: value).textFormatString()
            // A group's change lives in its history row; a group delivery names its group.
            case "group-history": valueText = value.isEmpty ? "" : try MessageRow(serializedBytes: value).textFormatString()
            case "inbox": valueText = UInt64(bigEndianBytes: value).map { "group \($0)" } ?? ""
            case "sessions": valueText = try SessionRow(serializedBytes: value).textFormatString()
            case "subscriptions": valueText = try SubscriptionRow(serializedBytes: value).textFormatString()
            case "clients": valueText = try ClientRow(serializedBytes: value).textFormatString()
            default: valueText = value.isEmpty ? "" : "\(value.count) bytes"
            }
        } catch {
            valueText = "<undecodable \(value.count) bytes>"
        }
        return "\(keyText) \(valueText.split(separator: "\n").map { $0.trimmingPrefix(" ") }.joined(separator: " "))"
    }

    private static func redacted(_ user: UserRow) -> UserRow {
        var copy = user
        copy.passwordHash = .init()
        copy.salt = .init()
        return copy
    }

    private static func framed(_ bytes: [UInt8]) -> [UInt8] {
        UInt32(bytes.count).bigEndianBytes + bytes
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
