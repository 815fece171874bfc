extension MessageRow {
    /// The row's protobuf encoding written out directly: the bytes `serializedBytes()` gives
    /// (fields in number order, default values left out) for a row with no unknown fields,
    /// without the generic visitor's size pass and per-field dispatch. Every send stores one.
    func storageBytes() -> [UInt8] {
        var sender = sender, recipient = recipient, body = body
        return sender.withUTF8 { sender in
            recipient.withUTF8 { recipient in
                body.withUTF8 { body in
                    // Beyond the strings' bytes: nine one-byte tags, five varints of up to ten
                    // bytes, `delivered`'s one, and three length varints of up to ten: 90.
                    let capacity = 90 + sender.count + recipient.count + body.count
                    return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                        var writer = Writer(base: buffer.baseAddress!, capacity: capacity)
                        writer.varintField(1, id)
                        writer.varintField(2, senderID)
                        writer.bytesField(3, sender)
                        writer.varintField(4, recipientID)
                        writer.bytesField(5, recipient)
                        writer.bytesField(6, body)
                        writer.varintField(7, UInt64(bitPattern: sentMs))
                        if delivered { writer.varintField(8, 1) }
                        writer.varintField(9, UInt64(bitPattern: editedMs))
                        count = writer.count
                    }
                }
            }
        }
    }

    /// Writes into memory it does not own: debug builds (the tests) check every write.
    private struct Writer {
        let base: UnsafeMutablePointer<UInt8>
        let capacity: Int
        var count = 0

        mutating func varintField(_ number: UInt8, _ value: UInt64) {
            guard value != 0 else { return }
            byte(number << 3)
            varint(value)
        }

        mutating func bytesField(_ number: UInt8, _ bytes: UnsafeBufferPointer<UInt8>) {
            guard !bytes.isEmpty else { return }
            byte(number << 3 | 2)
            varint(UInt64(bytes.count))
            assert(count + bytes.count <= capacity, "message row encoding overran its buffer")
            (base + count).update(from: bytes.baseAddress!, count: bytes.count)
            count += bytes.count
        }

        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                byte(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            byte(UInt8(rest))
        }

        mutating func byte(_ value: UInt8) {
            assert(count < capacity, "message row encoding overran its buffer")
            base[count] = value
            count += 1
        }
    }
}
