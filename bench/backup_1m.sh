#!/bin/bash
# Backup and restore of a cluster holding 1,000,000 messages.
set -e
cd "$(dirname "$0")/.."
T=.build/debug/chorus-tools; L=.build/debug/chorus-lab; N=.build/debug/chorus-node
R=${1:-/tmp/chorus-backup-bench}; rm -rf $R; mkdir -p $R
echo "== synth-log 1,000,000 entries"
/usr/bin/time -f "%e s" $L synth-log --dir $R/synth --entries 1000000 --users 1000 2>&1 | tail -2
printf 'cluster=bench\nnode=1\n' > $R/synth/identity
echo "== recover (apply the log and seed a one-voter cluster)"
/usr/bin/time -f "recover: %e s, max RSS %M KiB" $T recover --from $R/synth --into $R/node-1 --peer-address 127.0.0.9:7101 --client-address 127.0.0.9:7001 2>&1 | grep -v "^  index" | tail -4
inc=$(grep cluster-incarnation $R/node-1/identity | cut -d= -f2)
$N run --id 1 --listen 127.0.0.9:7001 --cluster-id bench~$inc --data-dir $R/node-1 --insecure --peer 1=127.0.0.9:7001 > $R/node-1.log 2>&1 &
node=$!
sleep 4
echo "== writes alone, 10 s (grpc-go, 16 callers)"
.build/interop/unary-bench -addr 127.0.0.9:7001 -scenario write -callers 16 -warmup 1s -duration 10s
echo "== backup while the same writes run"
.build/interop/unary-bench -addr 127.0.0.9:7001 -scenario write -callers 16 -warmup 0s -duration 20s > $R/during.json &
bench=$!
sleep 3
/usr/bin/time -f "backup: %e s" $T backup --out $R/chorus.backup --endpoints 127.0.0.9:7001 2>&1 | tail -2
wait $bench; cat $R/during.json; echo
ls -l $R/chorus.backup
/usr/bin/time -f "verify: %e s" $T backup verify $R/chorus.backup 2>&1 | tail -3
kill -TERM $node; wait $node || true
echo "== restore into 3 data directories"
/usr/bin/time -f "restore: %e s" $T restore $R/chorus.backup --into $R/restored --member 1=127.0.0.10:7001 --member 2=127.0.0.10:7002 --member 3=127.0.0.10:7003 2>&1 | tail -2
du -sh $R/restored/node-1
