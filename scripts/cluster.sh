#!/usr/bin/env bash
# Starts a local 5-node Chorus cluster on 127.0.0.1:7001-7005 and the web client on
# https://127.0.0.1:8080 (the README's main command). Data and per-node logs go under ./data;
# Ctrl-C stops everything. Run again to resume from the same data. With --insecure, the
# nodes and the web client run plaintext (http://127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_lmdb
say "building chorus-node, chorus and chorus-web (release; the first build takes several minutes)"
run swift build -c release --product chorus-node
run swift build -c release --product chorus
run swift build -c release --product chorus-web

data="${CHORUS_DATA:-data}"
web_port="${CHORUS_WEB_PORT:-8080}"
say "starting 5 nodes; talk to them with: .build/release/chorus --help"
.build/release/chorus-node local-cluster --nodes 5 --base-port 7001 --data-dir "$data" "$@" &
cluster=$!
web=""
stop() {
  trap - EXIT INT TERM
  [ -n "$web" ] && kill -TERM "$web" 2>/dev/null || true
  kill -TERM "$cluster" 2>/dev/null || true
  wait
}
trap stop EXIT INT TERM

web_args=(--listen "127.0.0.1:$web_port")
if [[ " $* " == *" --insecure "* ]]; then
  web_args+=(--insecure)
  url="http://127.0.0.1:$web_port/"
else
  # The cluster makes its certificates (the web client's among them) as it starts.
  for _ in $(seq 1 100); do [ -f "$data/certs/web-local-key.pem" ] && break; sleep 0.1; done
  web_args+=(--ca "$data/certs/ca.pem" --cert "$data/certs/web-local.pem" --key "$data/certs/web-local-key.pem")
  url="https://127.0.0.1:$web_port/"
fi
.build/release/chorus-web "${web_args[@]}" &
web=$!
say "web client: open $url in a browser$([ "${url:0:5}" = https ] && echo " (it is signed by this cluster's own CA, $data/certs/ca.pem: import it, or accept the browser's warning once)")"
wait "$cluster"
