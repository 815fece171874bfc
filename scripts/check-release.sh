#!/usr/bin/env bash
# Shows that a release build carries no test switch (planted bugs, crash points, injected disk
# faults, the broken-off snapshot transfer): every one is compiled only into debug builds.
#
#   bash scripts/check-release.sh            # builds chorus-node in release, then checks it
#   bash scripts/check-release.sh --node B   # checks the chorus-node binary B instead
#
# Two checks, each of which a debug build fails (run with --node .build/debug/chorus-node to
# see it fail):
#   1. no switch's variable name is in the binary at all;
#   2. a one-node cluster started with every switch set to what stops a debug node at once
#      (an EIO on its first log write, a crash point on its first snapshot) registers an
#      account, takes 20 sends, snapshots, and logs no planted-bug warning.
# Not part of CI: a release build of the node takes about 15 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

node=
while [ $# -gt 0 ]; do
  case "$1" in
    --node) node=$2; shift 2 ;;
    *) echo "usage: $0 [--node CHORUS-NODE-BINARY]" >&2; exit 2 ;;
  esac
done
ensure_lmdb
if [ -z "$node" ]; then
  say "building chorus-node in release"
  run swift build -c release --product chorus-node
  node=$(swift build -c release --show-bin-path)/chorus-node
fi
say "building the terminal client (debug) that drives the node"
run swift build "${TEST_BUILD_FLAGS[@]}" --product chorus
cli=$(swift build "${TEST_BUILD_FLAGS[@]}" --show-bin-path)/chorus

failed=0
say "1. test switches named in $node"
names=$(grep -a -o -E 'CHORUS_(UNSAFE|TEST|CRASH)_[A-Z_]+' "$node" | sort -u || true)
if [ -n "$names" ]; then
  echo "FAIL: the binary holds the test switches' names:"; echo "$names" | sed 's/^/  /'
  failed=1
else
  echo "ok: none"
fi

say "2. a node started with every switch set"
work=$(mktemp -d /tmp/chorus-release-check.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
endpoint=127.0.0.1:$port
env CHORUS_UNSAFE_ACK_ON_APPEND=1 CHORUS_UNSAFE_SKIP_DELETES=1 CHORUS_UNSAFE_DELETE_EXTRA=1 \
    CHORUS_UNSAFE_LOCAL_READS=1 CHORUS_TEST_ONE_VERSION_OLDER=1 CHORUS_TEST_DISK_FAULT='EIO@log#0' \
    CHORUS_CRASH_AT=snapshot-copied CHORUS_TEST_SNAPSHOT_DROP_AT=1 \
  "$node" run --id 1 --listen "$endpoint" --data-dir "$work/node-1" --cluster-id release-check --insecure \
    --peer "1=$endpoint" --snapshot-interval 10 >"$work/node.log" 2>&1 &
pid=$!
export CHORUS_SESSION_FILE=$work/session.json
client() { "$cli" "$@" --endpoints "$endpoint" --insecure --timeout 20; }
serve() {
  printf 'correct horse battery\ncorrect horse battery\n' | CHORUS_SESSION_FILE=$work/bob.json client register bob || return 1
  printf 'correct horse battery\ncorrect horse battery\n' | client register alice || return 1
  for n in $(seq 1 20); do client send bob "message $n" || return 1; done
}
if serve >"$work/client.log" 2>&1; then
  sleep 1
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: the node stopped after the writes:"; tail -5 "$work/node.log"; failed=1
  elif grep -q -i -E 'planted|crash point|injected|one_version_older' "$work/node.log"; then
    echo "FAIL: the node read a switch:"; grep -i -E 'planted|crash point|injected|one_version_older' "$work/node.log" | head -5; failed=1
  else
    echo "ok: 2 accounts and 20 sends served, $(grep -c 'snapshot' "$work/node.log" || true) snapshot lines logged, no switch read"
  fi
else
  echo "FAIL: the node did not serve the writes:"; tail -3 "$work/client.log"; tail -5 "$work/node.log"; failed=1
fi
[ "$failed" -eq 0 ] && say "$node carries no test switch" || say "$node carries test switches"
exit "$failed"
