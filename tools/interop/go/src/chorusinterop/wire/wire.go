// Package wire holds what the Go clients of the interoperability tests and benchmarks share:
// a gRPC codec that passes bytes through, and the few lines of protobuf wire format their
// requests need, so that no generated code is needed and the build uses only Debian's
// golang-google-grpc-dev (grpc-go in GOPATH mode).
package wire

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
)

func init() { encoding.RegisterCodec(Codec{}) }

// Dial connects to addr at grpc-go's default settings with this package's codec: in plaintext,
// or over TLS trusting the CA certificate in the PEM file ca when it is not "".
func Dial(addr, ca string) (*grpc.ClientConn, error) {
	security := grpc.WithInsecure()
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		security = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool}))
	}
	return grpc.Dial(addr, security, grpc.WithDefaultCallOptions(grpc.ForceCodec(Codec{})))
}

// Codec passes bytes through under the name "proto": the messages are encoded here.
type Codec struct{}

func (Codec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (Codec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (Codec) Name() string { return "proto" }

// Varint appends v as a protobuf varint.
func Varint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// Bytes appends a length-delimited field (a string, bytes or a nested message).
func Bytes(b []byte, field int, v []byte) []byte {
	b = Varint(b, uint64(field<<3|2))
	b = Varint(b, uint64(len(v)))
	return append(b, v...)
}

// VarintField appends a varint field.
func VarintField(b []byte, field int, v uint64) []byte {
	return Varint(Varint(b, uint64(field<<3)), v)
}

// RequestID encodes Chorus's RequestID: the client's id and the request's sequence.
func RequestID(client string, sequence uint64) []byte {
	return VarintField(Bytes(nil, 1, []byte(client)), 2, sequence)
}

// Message encodes fields 1... in order, each a nested message ([]byte) or a string.
func Message(fields ...interface{}) []byte {
	var b []byte
	for i, f := range fields {
		switch v := f.(type) {
		case []byte:
			b = Bytes(b, i+1, v)
		case string:
			b = Bytes(b, i+1, []byte(v))
		}
	}
	return b
}

// FirstString reads field 1 of a response when it is a string and comes first
// (LoginResponse.token); "" otherwise.
func FirstString(b []byte) string {
	if len(b) < 2 || b[0] != 1<<3|2 {
		return ""
	}
	n, shift, i := 0, 0, 1
	for ; i < len(b); i++ {
		n |= int(b[i]&0x7f) << shift
		shift += 7
		if b[i] < 0x80 {
			i++
			break
		}
	}
	if i+n > len(b) {
		return ""
	}
	return string(b[i : i+n])
}

// Fields reads the top-level fields of a message: varint fields and length-delimited ones
// (strings, bytes, nested messages), by number; other wire types end the scan. A repeated
// field keeps its last value.
func Fields(b []byte) (varints map[int]uint64, delimited map[int][]byte) {
	varints, delimited = map[int]uint64{}, map[int][]byte{}
	for len(b) > 0 {
		key, n := uvarint(b)
		if n == 0 {
			return
		}
		b = b[n:]
		field := int(key >> 3)
		switch key & 7 {
		case 0:
			v, n := uvarint(b)
			if n == 0 {
				return
			}
			varints[field], b = v, b[n:]
		case 2:
			size, n := uvarint(b)
			if n == 0 || uint64(len(b)-n) < size {
				return
			}
			delimited[field], b = b[n:n+int(size)], b[n+int(size):]
		default:
			return
		}
	}
	return
}

// uvarint decodes a varint at the start of b: its value and length (0 when b holds none).
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}
