#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (LMDB, network tools, foreign gRPC
# clients, Chromium and Selenium, Prometheus), builds everything (tests need the binaries: crash tests
# spawn and SIGKILL real processes), then runs every test, the browser tests last.
# Environment: CHORUS_SIM_SEEDS raises the number of seeds per Raft simulation scenario;
# CHORUS_CHAOS_SECONDS sets the length of the fault-injection run (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_lmdb
ensure_netlab
ensure_interop
ensure_browser
ensure_prometheus
say "checking that every target declares the modules it imports"
run python3 scripts/check-imports.py
say "building Chorus and its tests (the first build takes several minutes)"
run swift build --build-tests
# The rolling-upgrade test needs the previous release built beside this one. It builds in the
# background at the lowest priority while the suites below run (the real-process suite mostly
# waits on its clusters), and is cached in .build-previous/ for later runs.
say "building the previous release in the background for the rolling-upgrade test (scripts/previous-build.sh)"
mkdir -p .build-previous
nice -n 19 bash scripts/previous-build.sh > .build-previous/build.log 2>&1 &
previous_build=$!
trap 'kill "$previous_build" 2>/dev/null || true' EXIT
say "replaying the fuzz corpus through every fuzz target (scripts/fuzz.sh runs libFuzzer)"
for target in peer request command; do
  run .build/debug/chorus-fuzz "$target" "fuzz/corpus/$target"
done
# Two runs: the in-process suites load both cores for a minute (simulations, fuzz-style
# properties); the real-process suite starts clusters whose elections and handshakes should
# not compete with them for the CPU.
say "running the unit, simulation and property suites"
run swift test --skip-build --skip NodeTests
say "running the real-process suite (clusters, CLI, snapshots, trust boundary, fault injection)"
run swift test --skip-build --filter NodeTests --skip UpgradeTests
say "waiting for the previous release's build"
if ! wait "$previous_build"; then
  tail -40 .build-previous/build.log
  echo "error: building the previous release failed (log: .build-previous/build.log)" >&2
  exit 1
fi
CHORUS_PREVIOUS_NODE="$(tail -1 .build-previous/build.log)"
export CHORUS_PREVIOUS_NODE
say "running the upgrade tests (a rolling upgrade from the previous release, $CHORUS_PREVIOUS_NODE)"
run swift test --skip-build --filter UpgradeTests
say "running the browser tests (headless Chromium against chorus-web and a 5-node cluster)"
run python3 -m pytest -q -p no:cacheprovider Tests/Browser
