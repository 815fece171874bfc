#!/usr/bin/env bash
# Starts a local 5-node Chorus cluster on 127.0.0.1:7001-7005 and the web client on
# https://127.0.0.1:8080 (the README's main command). Data and per-node logs go under ./data;
# Ctrl-C stops everything. Run again to resume from the same data. With --insecure, the
# nodes and the web client run plaintext (http://127.0.0.1:8080). With --restore FILE (a
# `chorus-tools backup` file), a new cluster starts with the backup's content (the data
# directory must not hold a cluster yet).
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

restore=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --restore) [ $# -ge 2 ] || { echo "error: --restore needs a backup file" >&2; exit 64; }; restore="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"
if [ -n "$restore" ]; then
  if [ -e "$data/node-1" ]; then
    echo "error: $data already holds a cluster; move it away (or set CHORUS_DATA to another directory) to restore into a new one" >&2
    exit 1
  fi
  run swift build -c release --product chorus-tools
  members=()
  for id in 1 2 3 4 5; do
    if [[ " $* " == *" --insecure "* ]]; then
      members+=(--member "$id=127.0.0.1:$((7000 + id))")
    else
      members+=(--member "$id=127.0.0.1:$((7100 + id)),127.0.0.1:$((7000 + id))")
    fi
  done
  say "restoring $restore into $data (a new cluster 'local' with the backup's content)"
  run .build/release/chorus-tools backup verify "$restore"
  run .build/release/chorus-tools restore "$restore" --into "$data" --cluster local "${members[@]}"
fi
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
