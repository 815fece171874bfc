#!/usr/bin/env bash
# Where a single caller's write spends its time: one caller, one unary write at a time (grpc-go's
# unary-bench, `-scenario write`: Chorus SendMessage, etcd Put), against Chorus and etcd, each
# as one node and as five, with the data on this machine's disk and on tmpfs (no fsync cost),
# alternately. Then what one durable commit costs on this disk (`chorus-lab bench-log`): an
# LMDB commit as the Raft log makes it, and an append with one fdatasync as etcd's WAL does.
#
# Read it as differences: disk − tmpfs is what the disk costs a write; five nodes − one is what
# replication costs (a round trip to the followers through both processes' threads, and the
# followers' commits); tmpfs with one node is the software path alone.
#
#   bash bench/write_latency.sh [--seconds S] [--rounds N] [--nodes "1 5"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds=6 rounds=2 sizes="1 5"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --nodes) sizes=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S] [--rounds N] [--nodes LIST]" >&2; exit 2 ;;
  esac
done

ensure_lmdb
ensure_interop
if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
  say "installing etcd-server and etcd-client (the system compared against, and how its leader is found)"
  apt_install etcd-server etcd-client
fi
say "building release binaries (chorus-node, chorus-lab)"
run swift build -c release --product chorus-node
run swift build -c release --product chorus-lab
bin=$(swift build -c release --show-bin-path)

disk=$(mktemp -d /tmp/chorus-write-latency.XXXXXX)
memory=$(mktemp -d /dev/shm/chorus-write-latency.XXXXXX)
pids=()
# `local-cluster` stops its nodes on SIGTERM; etcd members are killed outright. Anything still
# running from a data directory of this run goes too.
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pkill -9 -f -- "--data-dir $disk/" 2>/dev/null || true
  pkill -9 -f -- "--data-dir $memory/" 2>/dev/null || true
  pids=()
}
cleanup() {
  stop_all
  rm -rf "$disk" "$memory"
}
trap cleanup EXIT

# Writes the JSON line of one single-caller write run against `addr` into $result, retried
# while the cluster settles (a follower refuses writes; a first election may still be under way).
result=$disk/result.json
measure() {
  local target=$1 addr=$2 out
  for _ in $(seq 1 20); do
    if out=$(.build/interop/unary-bench -target "$target" -scenario write -addr "$addr" -callers 1 -connections 1 \
        -warmup 2s -duration "${seconds}s" 2>&1); then
      echo "$out" | tail -1 >"$result"
      return 0
    fi
    sleep 0.5
  done
  echo "$target at $addr: $out" >&2
  return 1
}

chorus() {
  local root=$1 size=$2
  rm -rf "$root/chorus" && mkdir -p "$root/chorus"
  "$bin/chorus-node" local-cluster --insecure --nodes "$size" --base-port 7701 --data-dir "$root/chorus" >"$root/chorus.log" 2>&1 &
  pids+=($!)
  local leader
  leader=$(local_cluster_leader "$root/chorus.log") || { cat "$root/chorus.log" >&2; return 1; }
  measure chorus "$leader"
  stop_all
}

etcd_cluster() {
  local root=$1 size=$2 members="" id
  rm -rf "$root/etcd" && mkdir -p "$root/etcd"
  for id in $(seq 1 "$size"); do members+="n$id=http://127.0.0.1:$((7820 + id)),"; done
  for id in $(seq 1 "$size"); do
    etcd --name "n$id" --data-dir "$root/etcd/n$id" \
      --listen-client-urls "http://127.0.0.1:$((7800 + id))" --advertise-client-urls "http://127.0.0.1:$((7800 + id))" \
      --listen-peer-urls "http://127.0.0.1:$((7820 + id))" --initial-advertise-peer-urls "http://127.0.0.1:$((7820 + id))" \
      --initial-cluster "${members%,}" --initial-cluster-state new --initial-cluster-token write-latency \
      --log-level error >"$root/etcd/n$id.log" 2>&1 &
    pids+=($!)
  done
  # etcd forwards a follower's Put to its leader: measured at the leader, as Chorus is.
  local leader="" endpoints="" status
  for id in $(seq 1 "$size"); do endpoints+="127.0.0.1:$((7800 + id)),"; done
  for _ in $(seq 1 50); do
    status=$(ETCDCTL_API=3 etcdctl --endpoints "${endpoints%,}" endpoint status -w json 2>/dev/null || true)
    leader=$(python3 -c 'import json,sys
try:
    for s in json.loads(sys.argv[1]):
        if s["Status"]["leader"] == s["Status"]["header"]["member_id"]: print(s["Endpoint"]); break
except Exception: pass' "$status")
    [ -n "$leader" ] && break
    sleep 0.2
  done
  [ -n "$leader" ] || { echo "etcd elected no leader" >&2; return 1; }
  measure etcd "$leader"
  stop_all
}

printf '%-6s %-6s %5s %6s %9s %8s %8s\n' data system nodes round writes/s p50_ms p99_ms
for round in $(seq 1 "$rounds"); do
  for place in disk tmpfs; do
    root=$disk; [ "$place" = tmpfs ] && root=$memory
    for size in $sizes; do
      for system in chorus etcd; do
        if [ "$system" = chorus ]; then chorus "$root" "$size"; else etcd_cluster "$root" "$size"; fi
        python3 -c 'import json,sys
r = json.loads(sys.argv[1]); place, system, size, round = sys.argv[2:]
print("%-6s %-6s %5s %6s %9.0f %8.3f %8.3f" % (place, system, size, round, r["ops_per_second"], r["p50_ms"], r["p99_ms"]))' \
          "$(cat "$result")" "$place" "$system" "$size" "$round"
      done
    done
  done
done

say "one durable commit of one 256-byte entry on this disk"
run "$bin/chorus-lab" bench-log --batch 1 --seconds 2 --dir "$disk/bench-log"
