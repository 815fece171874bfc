#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (LMDB, network tools, foreign gRPC
# clients, Chromium and Selenium, Prometheus), builds everything (tests need the binaries: crash tests
# spawn and SIGKILL real processes), then runs every test, the browser tests last.
# Environment: CHORUS_SIM_SEEDS raises the number of seeds per Raft simulation scenario,
# CHORUS_REPLICA_SIM_SEEDS the seeds of each replica-loop simulation;
# CHORUS_CHAOS_SECONDS sets the length of the fault-injection run (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_all() {
  ensure_lmdb
  ensure_netlab
  ensure_interop
  ensure_browser
  ensure_prometheus
}
# Each step's length goes in a table printed at the end (`step`), so a CI log shows where the
# time went: the installs and the previous release's build apart from what CI's time limit counts.
steps=()
excluded=0
step() {
  local label=$1 began=$SECONDS
  shift
  "$@"
  steps+=("$(printf '%5ds  %s' $((SECONDS - began)) "$label")")
}
# A step that CI's limit does not count.
uncounted_step() {
  local began=$SECONDS
  step "$@"
  excluded=$((excluded + SECONDS - began))
}

uncounted_step "installs (not counted)" ensure_all
say "checking that every target declares the modules it imports"
run python3 scripts/check-imports.py
# The rolling-upgrade test runs the previous release beside this one. It shares this build's
# dependencies, so it is built first, in the same scratch path, and kept in .build-previous/.
say "building the previous release for the rolling-upgrade test (scripts/previous-build.sh)"
uncounted_step "the previous release's build (not counted)" run bash scripts/previous-build.sh
# Built now, so asked again it only says where (a `tee /dev/stderr` here truncated a log file
# that stderr was redirected to, losing everything before it).
CHORUS_PREVIOUS_NODE="$(bash scripts/previous-build.sh | tail -1)"
export CHORUS_PREVIOUS_NODE
say "building Chorus and its tests (the first build takes several minutes)"
step "the build" run swift build --build-tests
say "replaying the fuzz corpus through every fuzz target (scripts/fuzz.sh runs libFuzzer)"
# The request target keeps its fixture's projections in a temporary directory for as long
# as it runs: one of our own, removed afterwards.
fuzz_tmp="$(mktemp -d)"
replay_corpus() {
  for target in peer request command; do
    run env TMPDIR="$fuzz_tmp" .build/debug/chorus-fuzz "$target" "fuzz/corpus/$target"
  done
}
step "the fuzz corpus" replay_corpus
rm -rf "$fuzz_tmp"
# Each run bounded, so that a test that hangs ends the run with its name in the output rather
# than silently using up CI's time. The in-process suites load both cores for a minute
# (simulations, fuzz-style properties); the real-process suites start clusters whose elections
# and handshakes should not compete with them for the CPU.
# The simulation of the node's replica loop lives with the node's tests but is all CPU: it
# runs with the other simulations, not beside the real-process clusters.
say "running the unit, simulation and property suites"
step "the unit and property suites" run timeout --kill-after=30s 40m swift test --skip-build --skip NodeTests
step "the replica simulation" run timeout --kill-after=30s 10m swift test --skip-build --filter ReplicaSimulationTests
# Two serialized lanes of clusters (ClusterTests, EdgeTests) beside the smaller suites.
say "running the real-process suites (clusters, CLI, snapshots, trust boundary, the rolling upgrade)"
step "the real-process suites" run timeout --kill-after=30s 40m swift test --skip-build --filter NodeTests --skip ReplicaSimulationTests --skip FaultInjectionTests
# Alone: each run's workload keeps both cores busy, and a cluster test beside it starves.
say "running the fault-injection suite (chorus-lab chaos: five nodes in network namespaces, faults, a checked history)"
step "the fault-injection suite" run timeout --kill-after=30s 20m swift test --skip-build --filter FaultInjectionTests
say "running the browser tests (headless Chromium against chorus-web and a 5-node cluster)"
step "the browser tests" run python3 -m pytest -q -p no:cacheprovider Tests/Browser
say "every test passed"
printf '%s\n' "${steps[@]}"
printf '%5ds  in all; %ds without the installs and the previous release\n' "$SECONDS" $((SECONDS - excluded))
