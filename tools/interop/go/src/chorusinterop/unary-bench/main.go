// unary-bench drives Chorus or etcd the way most clients in other languages do: one unary
// gRPC call per operation (grpc-go at its default settings), many callers spread over one or
// several connections, a closed loop. The same code path measures both systems, so their
// numbers compare: a write is Chorus SendMessage or etcd Put (64-byte value, a fresh key), a
// read is a Chorus History page of 20 messages or an etcd linearizable Range of one key.
// Prints one JSON object: operations/s, p50/p99 latency, errors.
//
// The health scenario is the bare call: grpc.health.v1.Health/Check for the server as a
// whole (an empty request), against any gRPC server (-target any, or chorus, or etcd). It
// measures what a call costs before the application does anything.
//
// With -streams (Chorus only) the callers of each connection share one SendStream or
// ReadStream call instead (stream.go): what a client in another language gains by using the
// multiplexed calls our own client uses.
//
// Requests are encoded by hand (package wire), so the build needs only Debian's
// golang-google-grpc-dev in GOPATH mode.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"chorusinterop/wire"
	"google.golang.org/grpc/status"
)

type report struct {
	Target     string           `json:"target"`
	Scenario   string           `json:"scenario"`
	Callers    int              `json:"callers"`
	Conns      int              `json:"connections"`
	Streams    bool             `json:"streams"`
	Seconds    float64          `json:"seconds"`
	OK         int64            `json:"ok"`
	PerSecond  float64          `json:"ops_per_second"`
	P50Millis  float64          `json:"p50_ms"`
	P99Millis  float64          `json:"p99_ms"`
	Errors     map[string]int64 `json:"errors"`
	FirstError string           `json:"first_error,omitempty"`
}

func main() {
	target := flag.String("target", "chorus", "chorus | etcd | any (health only)")
	scenario := flag.String("scenario", "write", "write | read | health")
	addr := flag.String("addr", "127.0.0.1:7001", "where to send: the Chorus leader's client address, or an etcd client URL host:port")
	setupAddr := flag.String("setup-addr", "", "Chorus: where the accounts and the page to read are made (the leader; default -addr), so that reads may go to a follower")
	ca := flag.String("ca", "", "the CA (PEM) for TLS; plaintext without it")
	callers := flag.Int("callers", 16, "concurrent callers in all")
	conns := flag.Int("connections", 1, "connections the callers are spread over")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time first")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	streams := flag.Bool("streams", false, "Chorus: the callers of each connection share one SendStream or ReadStream call instead of one unary call per operation")
	flag.Parse()
	if *streams && (*target != "chorus" || *scenario == "health") {
		fail(fmt.Errorf("-streams is for Chorus's writes and reads"))
	}
	if *target != "chorus" && *target != "etcd" && *scenario != "health" {
		fail(fmt.Errorf("-target %s serves only -scenario health", *target))
	}
	ctx := context.Background()
	connections := make([]*grpc.ClientConn, *conns)
	for i := range connections {
		conn, err := wire.Dial(*addr, *ca)
		if err != nil {
			fail(err)
		}
		defer conn.Close()
		connections[i] = conn
	}
	invoke := func(conn *grpc.ClientConn, method string, request []byte) error {
		var response []byte
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Invoke(c, method, &request, &response)
	}
	call := func(conn *grpc.ClientConn, method string, request []byte) []byte {
		var response []byte
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := conn.Invoke(c, method, &request, &response); err != nil {
			fail(fmt.Errorf("%s: %v", method, err))
		}
		return response
	}

	// One operation per caller: what it sends, prepared once (accounts, a page to read).
	run := strings.ToLower(*target) + "-" + fmt.Sprint(time.Now().UnixNano()%1e9)
	type caller struct {
		conn *grpc.ClientConn
		op   func(seq uint64) error
	}
	value := []byte(strings.Repeat("v", 64))
	operations := make([]caller, *callers)
	tokens := make([]string, *conns)
	names := make([]string, *conns)
	if *scenario == "health" {
		// Nothing to prepare: the call carries nothing.
	} else if *target == "chorus" {
		// One account per connection, its callers share the session.
		for i, conn := range connections {
			if *setupAddr != "" {
				setup, err := wire.Dial(*setupAddr, *ca)
				if err != nil {
					fail(err)
				}
				defer setup.Close()
				conn = setup
			}
			names[i] = fmt.Sprintf("u%s-%d", run[len(run)-6:], i)
			client := fmt.Sprintf("%s-setup-%d", run, i)
			call(conn, "/chorus.v1.Chat/CreateAccount", wire.Bytes(wire.Bytes(wire.Bytes(nil, 1, wire.RequestID(client, 1)), 2, []byte(names[i])), 3, []byte("pw")))
			tokens[i] = wire.FirstString(call(conn, "/chorus.v1.Chat/Login", wire.Bytes(wire.Bytes(wire.Bytes(nil, 1, wire.RequestID(client, 2)), 2, []byte(names[i])), 3, []byte("pw"))))
			if *scenario == "read" {
				for m := 0; m < 20; m++ {
					call(conn, "/chorus.v1.Chat/SendMessage", wire.Bytes(wire.Bytes(wire.Bytes(wire.Bytes(nil, 1, wire.RequestID(client, uint64(3+m))), 2, []byte(tokens[i])), 3, []byte(names[i])), 4, value))
				}
			}
		}
	} else if *scenario == "read" {
		call(connections[0], "/etcdserverpb.KV/Put", wire.Bytes(wire.Bytes(nil, 1, []byte("bench-read-"+run)), 2, value))
	}
	multiplexers := make([]*reopening, *conns)
	if *streams {
		method := "SendStream"
		if *scenario == "read" {
			method = "ReadStream"
		}
		for i, conn := range connections {
			multiplexers[i] = &reopening{ctx: ctx, conn: conn, method: method}
		}
	}
	for i := range operations {
		slot := i % *conns
		conn := connections[slot]
		client := fmt.Sprintf("%s-%d", run, i)
		token, name := tokens[slot], names[slot]
		m, callBase := multiplexers[slot], uint64(i)<<32
		switch {
		case *scenario == "health":
			// HealthCheckRequest with no service: the empty message.
			operations[i] = caller{conn, func(uint64) error { return invoke(conn, "/grpc.health.v1.Health/Check", nil) }}
		case *streams && *scenario == "write":
			operations[i] = caller{conn, func(seq uint64) error {
				id := wire.RequestID(client, seq)
				return m.call(string(id), wire.Bytes(wire.Bytes(wire.Bytes(wire.Bytes(nil, 1, id), 2, []byte(token)), 3, []byte(name)), 4, value))
			}}
		case *streams:
			page := wire.VarintField(wire.Bytes(wire.Bytes(nil, 1, []byte(token)), 2, []byte(name)), 3, 20)
			operations[i] = caller{conn, func(seq uint64) error {
				// ReadRequest: call_id = 1, history = 2.
				id := callBase | seq
				return m.call(fmt.Sprint(id), wire.Bytes(wire.VarintField(nil, 1, id), 2, page))
			}}
		case *target == "chorus" && *scenario == "write":
			operations[i] = caller{conn, func(seq uint64) error {
				return invoke(conn, "/chorus.v1.Chat/SendMessage", wire.Bytes(wire.Bytes(wire.Bytes(wire.Bytes(nil, 1, wire.RequestID(client, seq)), 2, []byte(token)), 3, []byte(name)), 4, value))
			}}
		case *target == "chorus":
			page := wire.VarintField(wire.Bytes(wire.Bytes(nil, 1, []byte(token)), 2, []byte(name)), 3, 20)
			operations[i] = caller{conn, func(uint64) error { return invoke(conn, "/chorus.v1.Chat/History", page) }}
		case *scenario == "write":
			operations[i] = caller{conn, func(seq uint64) error {
				return invoke(conn, "/etcdserverpb.KV/Put", wire.Bytes(wire.Bytes(nil, 1, []byte(fmt.Sprintf("%s/%d", client, seq))), 2, value))
			}}
		default:
			// A Range is linearizable unless it asks to be serializable (field 7).
			get := wire.Bytes(nil, 1, []byte("bench-read-"+run))
			operations[i] = caller{conn, func(uint64) error { return invoke(conn, "/etcdserverpb.KV/Range", get) }}
		}
	}

	r := report{Target: *target, Scenario: *scenario, Callers: *callers, Conns: *conns, Streams: *streams, Errors: map[string]int64{}}
	var lock sync.Mutex
	var latencies []time.Duration
	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	var wg sync.WaitGroup
	for i := range operations {
		wg.Add(1)
		go func(op caller) {
			defer wg.Done()
			var mine []time.Duration
			var ok int64
			errors := map[string]int64{}
			first := ""
			seq := uint64(100)
			for {
				now := time.Now()
				if now.After(end) {
					break
				}
				seq++
				err := op.op(seq)
				elapsed := time.Since(now)
				if now.Before(measureFrom) {
					continue
				}
				if err == nil {
					ok++
					mine = append(mine, elapsed)
				} else {
					errors[status.Code(err).String()]++
					if first == "" {
						first = err.Error()
					}
				}
			}
			lock.Lock()
			r.OK += ok
			latencies = append(latencies, mine...)
			for code, n := range errors {
				r.Errors[code] += n
			}
			if r.FirstError == "" {
				r.FirstError = first
			}
			lock.Unlock()
		}(operations[i])
	}
	wg.Wait()
	r.Seconds = duration.Seconds()
	r.PerSecond = float64(r.OK) / r.Seconds
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	if n := len(latencies); n > 0 {
		r.P50Millis = float64(latencies[n/2].Microseconds()) / 1000
		r.P99Millis = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "unary-bench:", err)
	os.Exit(1)
}
