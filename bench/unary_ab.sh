#!/usr/bin/env bash
# A/B of chorus-node builds under a client: the foreign unary one by default
# (tools/interop/go/src/chorusinterop/unary-bench, one unary call per operation, on the
# leader), or with `--client swift` our own (`chorus-lab bench`, whose callers share one
# SendStream and one ReadStream, on all five nodes). For each round and each build, a fresh
# 5-node plaintext cluster from `local-cluster`, then every cell (scenario × callers). Prints
# ops/s, p50 and p99; under the foreign client also the CPU each operation cost on the leader
# and on the busiest follower (from /proc, over the measured window), by kind of thread with
# its context switches per operation (bench/threads.py), so that a change's effect is read off
# runs taken side by side. (Our client makes its callers' accounts first, with the password
# hashing that costs, so its window would not be the measured one: no CPU report for it.)
#
#   bash bench/unary_ab.sh [--client grpc-go|swift] [--rounds N] [--seconds S] [--cells "write:1 read:128:4"] A.node B.node …
#
# A cell is SCENARIO:CALLERS[:CONNECTIONS] (connections for the foreign client only; our
# client's scenarios are write, read and mixed).
#
# Each argument is a chorus-node binary (copy one aside before rebuilding), optionally followed
# by `,VAR=VALUE` settings for its nodes' environment; `local-cluster` of that binary starts
# its siblings, so each is copied into a directory of its own first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

rounds=2 seconds=6 cells="write:1 write:16 write:128 read:1 read:16 read:128" client=grpc-go
while [ $# -gt 0 ]; do
  case "$1" in
    --client) client=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --cells) cells=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--rounds N] [--seconds S] [--cells LIST] NODE-BINARY…" >&2; exit 2; }
case "$client" in
  grpc-go)
    ensure_interop
    bench=.build/interop/unary-bench ;;
  swift)
    ensure_lmdb
    run swift build -c release --product chorus-lab
    lab=$(swift build -c release --show-bin-path)/chorus-lab
    endpoints=$(seq -s, 7401 7405 | sed 's/\([0-9]\+\)/127.0.0.1:\1/g') ;;
  *) echo "--client is grpc-go or swift, not $client" >&2; exit 2 ;;
esac
work=$(mktemp -d /tmp/chorus-ab.XXXXXX)
cluster=
cleanup() {
  [ -n "$cluster" ] && kill "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT


for round in $(seq 1 "$rounds"); do
  for variant in "$@"; do
    binary=${variant%%,*}
    settings=()
    [ "$binary" != "$variant" ] && IFS=, read -r -a settings <<<"${variant#*,}"
    name=$(basename "$binary")${settings[*]:+ ${settings[*]}}
    dir="$work/$(basename "$binary")-$round-$RANDOM"
    rm -rf "$dir" && mkdir -p "$dir/bin"
    cp "$binary" "$dir/bin/chorus-node"
    # Our client makes two accounts per caller from one address: lift the per-address limit.
    env "${settings[@]}" "$dir/bin/chorus-node" local-cluster --insecure --base-port 7401 --data-dir "$dir/data" \
      -- --account-creations-per-minute 100000 >"$dir/cluster.log" 2>&1 &
    cluster=$!
    leader=$(local_cluster_leader "$dir/cluster.log") || { echo "no leader for $name" >&2; cat "$dir/cluster.log" >&2; exit 1; }
    leader_pid=$(pgrep -f "chorus-node run .*--listen $leader " | head -1)
    followers=$(pgrep -f "chorus-node run .*--data-dir $dir/data" | grep -v "^$leader_pid\$" || true)
    for cell in $cells; do
      IFS=: read -r scenario callers connections <<<"$cell"
      if [ "$client" = swift ]; then
        "$lab" bench --scenario "$scenario" -c "$callers" -d "$seconds" --warmup 2 --endpoints "$endpoints" --json >"$dir/out.json" 2>"$dir/err.log" ||
          { echo "$name round $round $cell: $(tail -1 "$dir/err.log")"; continue; }
        python3 - "$dir/out.json" "$name" "$round" <<'EOF'
import json, sys
path, name, round_ = sys.argv[1:]
r = json.loads(open(path).read())
print(f'{name:32} round {round_} {r["scenario"]:7} {r["callers"]:4} callers: {r["ops_per_second"]:8.0f} ops/s  '
      f'p50 {r["p50_ms"]:6.2f} ms  p99 {r["p99_ms"]:6.2f} ms  errors {r["errors"]}')
EOF
        continue
      fi
      "$bench" -addr "$leader" -scenario "$scenario" -callers "$callers" -connections "${connections:-1}" -duration "${seconds}s" -warmup 2s >"$dir/out.json" 2>"$dir/err.log" &
      load=$!
      sleep 2.5
      window=$((seconds - 1))
      python3 bench/threads.py snapshot $leader_pid $followers >"$dir/before.json"
      sleep "$window"
      python3 bench/threads.py snapshot $leader_pid $followers >"$dir/after.json"
      wait "$load"
      python3 - "$dir/out.json" "$name" "$round" "$window" <<'EOF'
import json, sys
path, name, round_, window = sys.argv[1:]
r = json.loads(open(path).read().strip().splitlines()[-1])
print(f'{name:32} round {round_} {r["scenario"]:5} {r["callers"]:4} callers {r["connections"]} conn: {r["ops_per_second"]:8.0f} ops/s  '
      f'p50 {r["p50_ms"]:6.2f} ms  p99 {r["p99_ms"]:6.2f} ms  errors {sum(r["errors"].values())}')
open(path + ".ops", "w").write(str(int(r["ops_per_second"] * float(window))))
EOF
      python3 bench/threads.py report "$dir/before.json" "$dir/after.json" "$(cat "$dir/out.json.ops")" "$leader_pid" $leader_pid $followers
    done
    kill "$cluster"; wait "$cluster" 2>/dev/null || true
    cluster=
  done
done
