package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"chorusinterop/wire"
)

// multiplexed carries many callers' requests over one Chorus SendStream or ReadStream call,
// as a client in any language can: each request carries a key (a send's request id, a read's
// call id), and the reply that comes back with that key is its caller's. Requests are written
// by whoever holds the lock (grpc-go coalesces the frames); one goroutine reads the replies.
type multiplexed struct {
	stream grpc.ClientStream
	// Where the reply's key and status code are: (key field, status field) of the reply.
	keyField, statusField int
	write                 sync.Mutex
	lock                  sync.Mutex
	waiting               map[string]chan error
	// Why the call ended, once it has: later requests fail at once rather than wait for a
	// reply that cannot come.
	ended error
}

// reopening keeps one multiplexed call of method open on conn: when the call ends (the node
// restarted, or closed the connection), the requests on it fail with that error and the next
// request opens a new call, as a client library would.
type reopening struct {
	ctx     context.Context
	conn    *grpc.ClientConn
	method  string
	lock    sync.Mutex
	current *multiplexed
}

func (r *reopening) call(key string, request []byte) error {
	r.lock.Lock()
	if r.current == nil || r.current.hasEnded() {
		m, err := openStream(r.ctx, r.conn, r.method)
		if err != nil {
			r.lock.Unlock()
			return err
		}
		r.current = m
	}
	m := r.current
	r.lock.Unlock()
	return m.call(key, request)
}

// openStream opens method ("SendStream" or "ReadStream") on conn and starts reading replies.
func openStream(ctx context.Context, conn *grpc.ClientConn, method string) (*multiplexed, error) {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: method, ServerStreams: true, ClientStreams: true}, "/chorus.v1.Chat/"+method)
	if err != nil {
		return nil, err
	}
	// SendReply: request_id = 1, status_code = 3; ReadReply: call_id = 1, status_code = 5.
	m := &multiplexed{stream: stream, keyField: 1, statusField: 3, waiting: map[string]chan error{}}
	if method == "ReadStream" {
		m.statusField = 5
	}
	go m.readReplies()
	return m, nil
}

// key is how a reply names its request: a send's request id as encoded, a read's call id.
func (m *multiplexed) key(varints map[int]uint64, delimited map[int][]byte) string {
	if b, ok := delimited[m.keyField]; ok {
		return string(b)
	}
	return fmt.Sprint(varints[m.keyField])
}

func (m *multiplexed) readReplies() {
	for {
		var reply []byte
		err := m.stream.RecvMsg(&reply)
		if err != nil {
			m.lock.Lock()
			m.ended = fmt.Errorf("the stream ended: %w", err)
			for key, done := range m.waiting {
				done <- fmt.Errorf("the stream ended: %w", err)
				delete(m.waiting, key)
			}
			m.lock.Unlock()
			return
		}
		varints, delimited := wire.Fields(reply)
		var result error
		if code := varints[m.statusField]; code != 0 {
			result = status.Error(codes.Code(code), "a request on the stream failed")
		}
		m.lock.Lock()
		done, ok := m.waiting[m.key(varints, delimited)]
		delete(m.waiting, m.key(varints, delimited))
		m.lock.Unlock()
		if ok {
			done <- result
		}
	}
}

func (m *multiplexed) hasEnded() bool {
	m.lock.Lock()
	defer m.lock.Unlock()
	return m.ended != nil
}

// call writes request, whose key is key, and waits for its reply.
func (m *multiplexed) call(key string, request []byte) error {
	done := make(chan error, 1)
	m.lock.Lock()
	if m.ended != nil {
		m.lock.Unlock()
		return m.ended
	}
	m.waiting[key] = done
	m.lock.Unlock()
	m.write.Lock()
	err := m.stream.SendMsg(&request)
	m.write.Unlock()
	if err != nil {
		m.lock.Lock()
		delete(m.waiting, key)
		m.lock.Unlock()
		return err
	}
	// A reply that never comes is an error the report counts, never a caller that waits
	// forever (and a benchmark or test that never ends).
	timer := time.NewTimer(replyTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		m.lock.Lock()
		delete(m.waiting, key)
		m.lock.Unlock()
		return status.Error(codes.DeadlineExceeded, fmt.Sprintf("no reply to request %q within %v", key, replyTimeout))
	}
}

// replyTimeout is how long a request on a stream waits for its reply, as a unary call's
// deadline does.
const replyTimeout = 10 * time.Second
