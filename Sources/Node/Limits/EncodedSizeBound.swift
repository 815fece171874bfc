import Foundation
import SwiftProtobuf

/// An upper bound of a message's encoded size, found by walking its fields without encoding
/// them: every field is counted with the longest tag and length prefix it could have.
///
/// `RequestSizeLimit` checks every client request. Encoding each one again to learn its size
/// cost a leader 4–8% of its CPU under unary load; the bound costs a walk, and only a request
/// whose bound passes the limit is encoded to learn its exact size.
struct EncodedSizeBound: Visitor {
    /// The bound so far.
    private(set) var bytes = 0
    /// A field the walk cannot bound (a map): the caller must encode the message.
    private(set) var unbounded = false

    /// A tag (at most 5 bytes) and a varint (at most 10).
    private static let scalar = 15
    /// A tag and a length prefix, each at most 5 bytes.
    private static let prefix = 10

    static func of(_ message: any SwiftProtobuf.Message) throws -> Int? {
        var bound = EncodedSizeBound()
        try message.traverse(visitor: &bound)
        return bound.unbounded ? nil : bound.bytes
    }

    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws { bytes += Self.scalar }
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws { bytes += Self.scalar }
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws { bytes += Self.scalar }
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws { bytes += Self.scalar }
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws { bytes += Self.prefix + value.utf8.count }
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws { bytes += Self.prefix + value.count }
    mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws { bytes += Self.scalar }

    mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        bytes += Self.prefix
        try value.traverse(visitor: &self)
    }

    mutating func visitMapField<KeyType, ValueType: MapValueType>(fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType,
                                                                 fieldNumber: Int) throws {
        unbounded = true
    }

    mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
                                                    fieldNumber: Int) throws {
        unbounded = true
    }

    mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
                                                    fieldNumber: Int) throws {
        unbounded = true
    }

    mutating func visitUnknown(bytes data: Data) throws { bytes += data.count }
}
