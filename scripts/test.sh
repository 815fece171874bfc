#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (LMDB, network tools, foreign gRPC
# clients, Chromium and Selenium, Prometheus), builds everything (tests need the binaries: crash
# tests spawn and SIGKILL real processes), then runs every test: the in-process suites, then the
# real-process suites with the fault-injection run beside them, then the browser tests with the
# planted bugs' runs beside them.
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
step "the build" run swift build "${TEST_BUILD_FLAGS[@]}" --build-tests
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
# Runs tests of the built bundle, bounded by $1: what `swift test --skip-build` runs, without
# SwiftPM, which holds a lock on .build and its build database for as long as it runs (and the
# steps below run side by side). A filter that matches no test fails rather than passing.
tests() {
  local limit=$1 out status
  shift
  out="$(mktemp)"
  printf '+ %s\n' "timeout $limit ChorusPackageTests.xctest $*"
  set +e
  NO_COLOR=1 timeout --kill-after=30s "$limit" .build/debug/ChorusPackageTests.xctest --testing-library swift-testing "$@" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 0 ] && grep -q "Test run with 0 tests" "$out"; then
    echo "error: no test matched: $*" >&2
    status=1
  fi
  rm -f "$out"
  return "$status"
}
export -f tests
# Each run is bounded, so that a test that hangs ends the run with its name in the output rather
# than silently using up CI's time. The in-process suites load both cores for a minute
# (simulations, fuzz-style properties); the real-process suites start clusters whose elections
# and handshakes should not compete with them for the CPU.
# The simulation of the node's replica loop lives with the node's tests but is all CPU: it
# runs with the other simulations, not beside the real-process clusters.
say "running the unit, simulation and property suites"
step "the unit and property suites" tests 40m --skip NodeTests
step "the replica simulation" tests 10m --filter ReplicaSimulationTests

# Steps run side by side: each in its own process group, its output kept in a file and printed
# whole when it is collected (`collect`), with its own length in the table. A step still
# running when this script ends, failing or not, is stopped with its processes.
declare -A beside_pid beside_log
beside() {
  local label=$1
  shift
  beside_log[$label]="$(mktemp)"
  printf '+ %s  (in the background: %s)\n' "$*" "$label"
  # Its length is written beside its output when it ends, not when it is collected.
  setsid bash -c 'began=$SECONDS; "$@"; status=$?; echo $((SECONDS - began)) > "$0.seconds"; exit $status' \
    "${beside_log[$label]}" "$@" > "${beside_log[$label]}" 2>&1 &
  beside_pid[$label]=$!
}
collect() {
  local label=$1 status=0
  wait "${beside_pid[$label]}" || status=$?
  unset 'beside_pid[$label]'
  say "$label: exit $status; its output:"
  cat "${beside_log[$label]}"
  steps+=("$(printf '%5ds  %s' "$(cat "${beside_log[$label]}.seconds" 2>/dev/null || echo 0)" "$label (beside other steps)")")
  rm -f "${beside_log[$label]}" "${beside_log[$label]}.seconds"
  [ "$status" -eq 0 ] || exit "$status"
}
stop_beside() {
  local label pid
  for label in "${!beside_pid[@]}"; do
    pid=${beside_pid[$label]}
    # By session: `timeout` moves what it runs into a process group of its own. Continued
    # first: a node a fault paused would hold its SIGTERM until then. `chorus-lab chaos`
    # deletes its namespaces on SIGTERM; whatever is left after 30 s is killed.
    pkill -CONT -s "$pid" 2>/dev/null || true
    pkill -TERM -s "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      pgrep -s "$pid" >/dev/null || break
      sleep 0.5
    done
    pkill -KILL -s "$pid" 2>/dev/null || true
    say "$label was stopped; its output until then:"
    cat "${beside_log[$label]}" 2>/dev/null || true
    rm -f "${beside_log[$label]}" "${beside_log[$label]}.seconds"
  done
}
trap stop_beside EXIT

# The fault-injection suite runs beside the real-process suites and the browser tests, which
# mostly wait (on elections, timeouts, the browser), at a lower priority: its workload sends as
# fast as it is answered and would otherwise take the CPU their clusters need to answer in
# time. What its guarantees run checks holds however little CPU the workload gets: it runs
# beside the real-process suites. The planted bugs' runs need the workload to reach each bug
# in a short run: they come after both, beside the browser tests alone, which leave them more
# than a core.
say "running the fault-injection run (chorus-lab chaos: five nodes in network namespaces, faults, a checked history) at a lower priority, beside the real-process suites"
beside "the fault-injection run" nice -n 10 bash -c 'tests 20m --filter FaultInjectionTests'
step "the real-process suites" tests 40m --filter NodeTests \
  --skip ReplicaSimulationTests --skip FaultInjectionTests --skip PlantedBugTests
collect "the fault-injection run"
say "running the planted bugs' runs (the fault-injection checker catches each) at a lower priority, beside the browser tests (headless Chromium against chorus-web and a 5-node cluster)"
beside "the planted bugs' runs" nice -n 10 bash -c 'tests 20m --filter PlantedBugTests'
step "the browser tests" run python3 -m pytest -q -p no:cacheprovider Tests/Browser
collect "the planted bugs' runs"
say "every test passed"
printf '%s\n' "${steps[@]}"
printf '%5ds  in all; %ds without the installs and the previous release\n' "$SECONDS" $((SECONDS - excluded))
