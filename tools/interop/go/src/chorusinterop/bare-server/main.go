// bare-server is grpc-go's own server answering grpc.health.v1.Health/Check and nothing
// else: the reference for what a bare call costs a server, next to a Chorus node and a
// minimal grpc-swift-2 server driven by the same client (bench/bare_call.sh).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7601", "where to listen")
	cert := flag.String("cert", "", "TLS certificate (PEM); plaintext without it")
	key := flag.String("key", "", "TLS key (PEM)")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare-server:", err)
		os.Exit(1)
	}
	var options []grpc.ServerOption
	if *cert != "" {
		creds, err := credentials.NewServerTLSFromFile(*cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bare-server:", err)
			os.Exit(1)
		}
		options = append(options, grpc.Creds(creds))
	}
	server := grpc.NewServer(options...)
	healthpb.RegisterHealthServer(server, health.NewServer())
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		server.Stop()
	}()
	fmt.Println("listening on", listener.Addr())
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, "bare-server:", err)
		os.Exit(1)
	}
}
