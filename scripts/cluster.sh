#!/usr/bin/env bash
# Starts a local 5-node Chorus cluster on loopback (the README's main command).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_lmdb
say "building chorus-node"
run swift build --product chorus-node
if ! .build/debug/chorus-node --help 2>/dev/null | grep -q -- '--peers'; then
  echo "The node daemon (issue 4) is not available yet: this build has the storage, the state" >&2
  echo "machine and the consensus core. Run scripts/test.sh to exercise them." >&2
  exit 2
fi
