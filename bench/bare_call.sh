#!/usr/bin/env bash
# The bare call: what one gRPC call with nothing behind it costs each server, driven by the
# same foreign client (grpc-go's unary-bench, `-scenario health`: grpc.health.v1.Health/Check
# with an empty request, one unary call per operation) in one run. Servers, one at a time:
#
#   grpc-go        grpc-go's own server with its health service (the reference)
#   etcd           a one-member etcd (its gRPC server is grpc-go too), when etcd is installed
#   swift          grpc-swift-2 at its defaults, answering SERVING (`chorus-lab bare-server`)
#   swift-node     the same, set up as a node's client listener (`--node-settings`)
#   swift-inline   grpc-swift-2's server on the node's inline transport (`--inline`), set up
#                  as a node's client listener: each stream served in its connection's pipeline
#   swift-lean     swift-nio-http2 without a gRPC library: frames answered on the connection's
#                  event loop, no child channel or task per call (`--lean`; a measuring stick)
#   chorus-node    the leader of a 5-node Chorus cluster, whose Check reports readiness
#                  (`chorus-node=PATH` for another build of it, e.g. one copied aside)
#
# For each server and each caller count: calls/s, p50 and p99, and the CPU each call cost
# the server and the load generator, in µs (from /proc over the measured window; both share
# the machine's two cores, so the client's CPU is part of every figure).
#
# With --tls every server speaks TLS (one CA and certificate made here with openssl; the Chorus
# cluster's own from `local-cluster`), the client checking it.
#
#   bash bench/bare_call.sh [--tls] [--seconds S] [--callers "1 16 128"] [--connections N] [--servers "grpc-go swift chorus-node"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds=8 callers="1 16 128" connections=2 servers="grpc-go etcd swift swift-node swift-inline swift-lean chorus-node" tls=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --callers) callers=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --tls) tls=1; shift ;;
    *) echo "usage: $0 [--seconds S] [--callers LIST] [--connections N] [--servers LIST]" >&2; exit 2 ;;
  esac
done

ensure_lmdb
ensure_interop
say "building release binaries (chorus-lab, chorus-node)"
run swift build -c release --product chorus-lab
run swift build -c release --product chorus-node
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d /tmp/chorus-bare.XXXXXX)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# TLS: a CA and a certificate for 127.0.0.1 and localhost, for every server but Chorus's.
tls_server=() tls_etcd=() scheme=http
if [ -n "$tls" ]; then
  say "making a CA and a server certificate (openssl)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bare-ca \
    -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/san.ext"
  openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial -days 2 \
    -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null
  tls_server=(--certificate "$work/cert.pem" --key "$work/key.pem")
  tls_etcd=(--cert-file "$work/cert.pem" --key-file "$work/key.pem")
  scheme=https
fi

# The CPU time (utime + stime, in clock ticks) of a process and all its threads.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# Starts `$@` in the background as the server under test; sets `server` (the process to
# kill) and `pid` (the process to measure). The caller waits until it answers.
start() {
  "$@" >"$work/server.log" 2>&1 &
  server=$!
  pid=$server
}

stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}

printf '%-24s %7s %10s %8s %8s %12s %12s\n' server callers calls/s p50_ms p99_ms server_us client_us
for name in $servers; do
  ca=${tls:+$work/ca.pem}
  node_binary=$bin/chorus-node
  case "$name" in chorus-node=*) node_binary=${name#chorus-node=}; name=chorus-node:$(basename "$node_binary") ;; esac
  case "$name" in
    grpc-go) start .build/interop/bare-server -addr 127.0.0.1:7601 ${tls:+-cert "$work/cert.pem" -key "$work/key.pem"}; addr=127.0.0.1:7601 ;;
    etcd)
      if ! command -v etcd >/dev/null; then echo "etcd is not installed: skipped (apt-get install etcd-server)"; continue; fi
      rm -rf "$work/etcd"
      start etcd --name bare --data-dir "$work/etcd" --listen-client-urls $scheme://127.0.0.1:7611 \
        --advertise-client-urls $scheme://127.0.0.1:7611 "${tls_etcd[@]}" --listen-peer-urls http://127.0.0.1:7612 \
        --initial-advertise-peer-urls http://127.0.0.1:7612 --initial-cluster bare=http://127.0.0.1:7612 \
        --log-level error
      addr=127.0.0.1:7611 ;;
    swift) start "$bin/chorus-lab" bare-server --listen 127.0.0.1:7602 "${tls_server[@]}"; addr=127.0.0.1:7602 ;;
    swift-node) start "$bin/chorus-lab" bare-server --node-settings --listen 127.0.0.1:7603 "${tls_server[@]}"; addr=127.0.0.1:7603 ;;
    swift-inline) start "$bin/chorus-lab" bare-server --inline --listen 127.0.0.1:7605 "${tls_server[@]}"; addr=127.0.0.1:7605 ;;
    swift-lean) start "$bin/chorus-lab" bare-server --lean --listen 127.0.0.1:7604 "${tls_server[@]}"; addr=127.0.0.1:7604 ;;
    chorus-node*)
      rm -rf "$work/cluster" && mkdir -p "$work/cluster/bin"
      cp "$node_binary" "$work/cluster/bin/chorus-node"
      start "$work/cluster/bin/chorus-node" local-cluster $([ -n "$tls" ] || echo --insecure) --base-port 7401 --data-dir "$work/cluster/data"
      addr=$(local_cluster_leader "$work/server.log") || { echo "no leader" >&2; cat "$work/server.log" >&2; exit 1; }
      pid=$(pgrep -f "chorus-node run .*--listen $addr " | head -1)
      ca=${tls:+$work/cluster/data/certs/ca.pem} ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
  esac
  answered=
  for _ in $(seq 1 50); do
    .build/interop/unary-bench -target any -scenario health -addr "$addr" ${ca:+-ca "$ca"} -callers 1 -duration 100ms -warmup 0s >/dev/null 2>&1 && { answered=1; break; }
    sleep 0.2
  done
  [ -n "$answered" ] || { echo "$name does not answer at $addr" >&2; cat "$work/server.log" >&2; exit 1; }
  for count in $callers; do
    .build/interop/unary-bench -target any -scenario health -addr "$addr" ${ca:+-ca "$ca"} -callers "$count" -connections "$connections" \
      -duration "${seconds}s" -warmup 2s >"$work/out.json" 2>"$work/err.log" &
    load=$!
    sleep 2.5
    window=$((seconds - 1))
    server_before=$(ticks "$pid") client_before=$(ticks "$load")
    sleep "$window"
    server_after=$(ticks "$pid") client_after=$(ticks "$load")
    wait "$load" || { echo "$name $count callers: $(tail -1 "$work/err.log")"; continue; }
    python3 - "$work/out.json" "$name" "$window" "$hz" $((server_after - server_before)) $((client_after - client_before)) <<'EOF'
import json, sys
path, name, window, hz, server, client = sys.argv[1:]
r = json.loads(open(path).read().strip().splitlines()[-1])
calls = r["ops_per_second"] * float(window)
per_call = lambda ticks: int(ticks) / int(hz) * 1e6 / calls if calls else float("nan")
errors = sum(r["errors"].values())
print(f'{name:24} {r["callers"]:7} {r["ops_per_second"]:10.0f} {r["p50_ms"]:8.3f} {r["p99_ms"]:8.3f} '
      f'{per_call(server):12.1f} {per_call(client):12.1f}' + (f'   errors {r["errors"]} {r.get("first_error", "")}' if errors else ''))
EOF
  done
  stop
done
