// chorus-load drives a Chorus node with grpc-go, the most common gRPC client, at its default
// settings: many callers share one connection, one unary call per message. It reports every
// call's status and every time the connection left READY (a GOAWAY, a reset, a ping policy
// that closed it), as one JSON object on stdout.
//
// Modes: `send` (the default) sends messages to itself; `stall` opens subscriptions for
// -user and never reads them; `abuse` sends what no honest client sends (huge id lists,
// oversized bodies, wrong passwords, account storms) and counts the answers; `oversize` sends
// one body over the request limit and one far over it, and prints their statuses.
//
// Requests are encoded by hand (package wire), so no generated code is needed: the build uses
// only Debian's golang-google-grpc-dev (grpc-go 1.33, GOPATH mode).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"

	"chorusinterop/wire"
	"google.golang.org/grpc/status"
)

type report struct {
	Calls      int64            `json:"calls"`
	OK         int64            `json:"ok"`
	Errors     map[string]int64 `json:"errors"`
	FirstError string           `json:"first_error"`
	LeftReady  int64            `json:"left_ready"`
	States     []string         `json:"states"`
	Seconds    float64          `json:"seconds"`
	PerSecond  float64          `json:"per_second"`
	P50Millis  float64          `json:"p50_ms"`
	P99Millis  float64          `json:"p99_ms"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7001", "the leader's client address")
	ca := flag.String("ca", "", "the cluster's CA (PEM); plaintext without it")
	callers := flag.Int("callers", 150, "concurrent calls on the one connection")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	name := flag.String("user", fmt.Sprintf("go%d", time.Now().UnixNano()%1000000000), "the account to create and send as")
	mode := flag.String("mode", "send", "send | stall | abuse | oversize")
	password := flag.String("password", "pw", "the account's password (stall: an existing account)")
	flag.Parse()
	conn, err := wire.Dial(*addr, *ca)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	ctx := context.Background()
	call := func(method string, request []byte) ([]byte, error) {
		var response []byte
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := conn.Invoke(c, "/chorus.v1.Chat/"+method, &request, &response)
		return response, err
	}

	client := "go-" + *name
	if *mode != "stall" {
		if _, err := call("CreateAccount", wire.Message(wire.RequestID(client, 1), *name, *password)); err != nil {
			fail(err)
		}
	}
	login, err := call("Login", wire.Message(wire.RequestID(client, 2), *name, *password))
	if err != nil {
		fail(err)
	}
	token := wire.FirstString(login)
	if *mode == "stall" {
		stall(conn, token, *callers, *duration)
		return
	}
	if *mode == "oversize" {
		oversize(call, client, token, *name)
		return
	}

	// Every state the connection passes through once it is READY.
	var states []string
	var statesLock sync.Mutex
	var leftReady int64
	watchCtx, stopWatching := context.WithCancel(ctx)
	go func() {
		state := conn.GetState()
		for conn.WaitForStateChange(watchCtx, state) {
			next := conn.GetState()
			statesLock.Lock()
			states = append(states, next.String())
			statesLock.Unlock()
			if state == connectivity.Ready && next != connectivity.Ready {
				atomic.AddInt64(&leftReady, 1)
			}
			state = next
		}
	}()

	var r report
	r.Errors = map[string]int64{}
	var lock sync.Mutex
	var latencies []time.Duration
	var sequence uint64 = 2
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for i := 0; i < *callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				seq := atomic.AddUint64(&sequence, 1)
				began := time.Now()
				var err error
				if *mode == "abuse" {
					err = abuse(call, client, seq, token, *name)
				} else {
					_, err = call("SendMessage", wire.Message(wire.RequestID(client, seq), token, *name, "from grpc-go"))
				}
				elapsed := time.Since(began)
				lock.Lock()
				r.Calls++
				if err == nil {
					r.OK++
					mine = append(mine, elapsed)
				} else {
					code := status.Code(err)
					r.Errors[code.String()]++
					if r.FirstError == "" {
						r.FirstError = err.Error()
					}
					if code == codes.Unavailable {
						time.Sleep(10 * time.Millisecond)
					}
				}
				lock.Unlock()
			}
			lock.Lock()
			latencies = append(latencies, mine...)
			lock.Unlock()
		}()
	}
	wg.Wait()
	stopWatching()
	r.Seconds = time.Since(start).Seconds()
	r.PerSecond = float64(r.OK) / r.Seconds
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	if n := len(latencies); n > 0 {
		r.P50Millis = float64(latencies[n/2].Microseconds()) / 1000
		r.P99Millis = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	statesLock.Lock()
	r.States = states
	statesLock.Unlock()
	r.LeftReady = atomic.LoadInt64(&leftReady)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// abuse makes one call no honest client makes, chosen by the sequence number.
func abuse(call func(string, []byte) ([]byte, error), client string, seq uint64, token, name string) error {
	switch seq % 5 {
	case 0: // 100,000 ids: about 500 KB, over the request limit
		ids := make([]byte, 0, 600000)
		for i := uint64(1); i <= 100000; i++ {
			ids = wire.Varint(ids, i)
		}
		_, err := call("AcknowledgeMessages", append(wire.Message(wire.RequestID(client, seq), token), wire.Bytes(nil, 3, ids)...))
		return err
	case 1: // 5,000 ids: under the byte limit, over the id limit
		ids := make([]byte, 0, 20000)
		for i := uint64(1); i <= 5000; i++ {
			ids = wire.Varint(ids, i)
		}
		_, err := call("DeleteMessages", append(wire.Message(wire.RequestID(client, seq), token), wire.Bytes(nil, 3, ids)...))
		return err
	case 2: // a 300 KiB body
		body := make([]byte, 300<<10)
		for i := range body {
			body[i] = 'x'
		}
		_, err := call("SendMessage", wire.Message(wire.RequestID(client, seq), token, name, string(body)))
		return err
	case 3: // a wrong password
		_, err := call("Login", wire.Message(wire.RequestID(client, seq), name, "wrong"))
		return err
	default: // a new account
		_, err := call("CreateAccount", wire.Message(wire.RequestID(client, seq), fmt.Sprintf("storm%d", seq), "pw"))
		return err
	}
}

// oversize sends one body over the request limit, one far over it (16 MiB), then an honest
// send on the same connection, and prints each call's status code and message.
func oversize(call func(string, []byte) ([]byte, error), client, token, name string) {
	result := map[string]string{}
	answer := func(label string, err error) {
		result[label+"_code"] = status.Code(err).String()
		result[label+"_message"] = status.Convert(err).Message()
	}
	body := func(size int) string {
		b := make([]byte, size)
		for i := range b {
			b[i] = 'x'
		}
		return string(b)
	}
	_, err := call("SendMessage", wire.Message(wire.RequestID(client, 10), token, name, body(300<<10)))
	answer("over_limit", err)
	_, err = call("SendMessage", wire.Message(wire.RequestID(client, 11), token, name, body(16<<20)))
	answer("far_over", err)
	_, err = call("SendMessage", wire.Message(wire.RequestID(client, 12), token, name, "still here"))
	answer("after", err)
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}

// stall opens `streams` subscriptions for the token's user and never reads them: HTTP/2 flow
// control fills, and the node must cut them off rather than buffer their events.
func stall(conn *grpc.ClientConn, token string, streams int, duration time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	opened, failed := 0, 0
	desc := &grpc.StreamDesc{StreamName: "Subscribe", ServerStreams: true}
	for i := 0; i < streams; i++ {
		stream, err := conn.NewStream(ctx, desc, "/chorus.v1.Chat/Subscribe")
		if err == nil {
			request := wire.Message(token)
			err = stream.SendMsg(&request)
		}
		if err == nil {
			err = stream.CloseSend()
		}
		if err != nil {
			failed++
		} else {
			opened++
		}
	}
	<-ctx.Done()
	out, _ := json.Marshal(map[string]int{"opened": opened, "failed": failed})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chorus-load:", err)
	os.Exit(1)
}
