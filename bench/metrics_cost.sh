#!/usr/bin/env bash
# What metrics cost on the write path: the same release cluster (5 nodes, plaintext, every
# node with --metrics-listen) under `chorus-lab bench`, alternately without a scraper and
# with Debian's Prometheus scraping all five nodes every second. Prints one line per run and,
# at the end, the highlights of one scrape of the leader under load.
#
#   swift build -c release && bench/metrics_cost.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
root="$(mktemp -d /tmp/chorus-metrics-bench.XXXXXX)"
bin=.build/release
host=127.0.0.1
base=7301
endpoints="$host:7301,$host:7302,$host:7303,$host:7304,$host:7305"
cluster=""
prom=""
cleanup() {
  [ -n "$prom" ] && kill "$prom" 2>/dev/null && wait "$prom" 2>/dev/null || true
  [ -n "$cluster" ] && kill -TERM "$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT

"$bin/chorus-node" local-cluster --insecure --nodes 5 --host "$host" --base-port "$base" --data-dir "$root/data" > "$root/cluster.log" 2>&1 &
cluster=$!
for _ in $(seq 1 100); do grep -q "leader: node" "$root/cluster.log" && break; sleep 0.2; done

cat > "$root/prometheus.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: chorus
    static_configs: [{targets: ['$host:7501', '$host:7502', '$host:7503', '$host:7504', '$host:7505']}]
YAML

bench() {
  "$bin/chorus-lab" bench --endpoints "$endpoints" --scenario write -c "$1" -d 10 --warmup 2 --json
}
summary() {
  python3 -c 'import json,sys; r=json.load(sys.stdin); print("%8.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %d" % (r["ops_per_second"], r["p50_ms"], r["p99_ms"], r["errors"]))'
}

for round in $(seq 1 "$rounds"); do
  [ "$rounds" -gt 0 ] || break
  for callers in 1 16; do
    printf 'round %d  %3d callers  no scraper     ' "$round" "$callers"; bench "$callers" | summary
    /usr/bin/prometheus --config.file="$root/prometheus.yml" --storage.tsdb.path="$root/prom" \
      --web.listen-address="$host:7590" --log.level=error > "$root/prometheus.log" 2>&1 &
    prom=$!
    sleep 2
    printf 'round %d  %3d callers  scraped at 1 s ' "$round" "$callers"; bench "$callers" | summary
    kill "$prom"; wait "$prom" 2>/dev/null || true; prom=""
  done
done

# One scrape of the leader while 16 callers write.
leader=""
for i in 1 2 3 4 5; do
  if curl -s "$host:750$i/metrics" | grep '^chorus_raft_role{role="leader"} 1' > /dev/null; then leader=$i; fi
done
bench 16 > /dev/null &
load=$!
sleep 6
echo "--- node $leader's /metrics under load (highlights) ---"
curl -s "$host:750$leader/metrics" | grep -E '^(chorus_raft_(term|commit_index|applied_index|leader_changes_total)|chorus_peer_lag_entries|chorus_peer_inflight_appends|chorus_proposals_total|chorus_log_write_seconds_(sum|count)|chorus_apply_seconds_(sum|count)|chorus_raft_persisted_entries_(sum|count)|chorus_grpc_requests_total|chorus_users|chorus_messages|process_resident_memory_bytes|process_open_fds)' || true
wait "$load"
