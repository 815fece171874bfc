#!/usr/bin/env bash
# A/B of chorus-node builds under our own Swift client (`chorus-tools bench`, which multiplexes
# its callers' sends and reads over SendStream and ReadStream): for each round, each cell and
# each build, a fresh 5-node plaintext cluster from `local-cluster`, then one measured run
# against all five endpoints. Prints ops/s, p50 and p99 per build, side by side, so that a
# change's effect is read off runs taken alternately. (bench/unary_ab.sh does the same with
# the foreign grpc-go client and adds the CPU each operation cost.)
#
#   bash bench/client_ab.sh [--rounds N] [--seconds S] [--cells "read:16 read:128 write:16"] A.node B.node …
#
# A cell is SCENARIO:CALLERS, the scenario one of `chorus-tools bench`'s (write, read, mixed).
# Each argument is a chorus-node binary (copy one aside before rebuilding), optionally followed
# by `,VAR=VALUE` settings for its nodes' environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=2 seconds=6 cells="write:16 write:128 read:1 read:16 read:128 mixed:16 mixed:128"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --cells) cells=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] [--seconds S] [--cells LIST] NODE-BINARY…" >&2; exit 2; }
ensure_lmdb
run swift build -c release --product chorus-tools
tools=$(swift build -c release --show-bin-path)/chorus-tools
endpoints=$(seq -s, 7401 7405 | sed 's/\([0-9]\+\)/127.0.0.1:\1/g')
work=$(mktemp -d /tmp/chorus-client-ab.XXXXXX)
cluster=
cleanup() {
  [ -n "$cluster" ] && kill "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

for round in $(seq 1 "$rounds"); do
  for cell in $cells; do
    scenario=${cell%%:*} callers=${cell##*:}
    for variant in "$@"; do
      binary=${variant%%,*}
      settings=()
      [ "$binary" != "$variant" ] && IFS=, read -r -a settings <<<"${variant#*,}"
      name=$(basename "$binary")${settings[*]:+ ${settings[*]}}
      dir="$work/run-$round-$RANDOM"
      mkdir -p "$dir/bin"
      cp "$binary" "$dir/bin/chorus-node"
      # The load generator makes two accounts per caller from one address: lift the node's
      # per-address limit on new accounts for the run.
      env "${settings[@]}" "$dir/bin/chorus-node" local-cluster --insecure --base-port 7401 --data-dir "$dir/data" \
        -- --account-creations-per-minute 100000 >"$dir/cluster.log" 2>&1 &
      cluster=$!
      for _ in $(seq 1 100); do
        grep -q 'leader: node' "$dir/cluster.log" && break
        sleep 0.2
      done
      grep -q 'leader: node' "$dir/cluster.log" || { echo "no leader for $name" >&2; cat "$dir/cluster.log" >&2; exit 1; }
      result=$("$tools" bench --scenario "$scenario" -c "$callers" -d "$seconds" --warmup 2 --endpoints "$endpoints" --json 2>&1) || true
      printf '%-32s round %d %-6s %4d callers: %s\n' "$name" "$round" "$scenario" "$callers" "$(python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
    print("%8.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %d" % (d["ops_per_second"], d["p50_ms"], d["p99_ms"], d["errors"]))
except Exception:
    print("failed: " + sys.argv[1].strip().splitlines()[-1] if sys.argv[1].strip() else "failed")
' "$result")"
      kill "$cluster" && wait "$cluster" 2>/dev/null || true
      cluster=
      rm -rf "$dir"
    done
  done
done
