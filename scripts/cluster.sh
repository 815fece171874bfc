#!/usr/bin/env bash
# Starts a local 5-node Chorus cluster on 127.0.0.1:7001-7005 (the README's main command).
# Data and per-node logs go under ./data; Ctrl-C stops every node. Run again to resume from
# the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_lmdb
say "building chorus-node and chorus (release; the first build takes several minutes)"
run swift build -c release --product chorus-node
run swift build -c release --product chorus
say "starting 5 nodes; talk to them with: .build/release/chorus --help"
exec .build/release/chorus-node local-cluster --nodes 5 --base-port 7001 --data-dir "${CHORUS_DATA:-data}" "$@"
