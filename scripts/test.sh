#!/usr/bin/env bash
# Runs the whole test suite: installs LMDB if needed, builds everything (tests need the
# binaries: crash tests spawn and SIGKILL real processes), then runs every test.
# Environment: CHORUS_SIM_SEEDS raises the number of seeds per Raft simulation scenario;
# CHORUS_CHAOS_SECONDS sets the length of the fault-injection run (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_lmdb
ensure_netlab
say "building Chorus and its tests (the first build takes several minutes)"
run swift build --build-tests
say "replaying the fuzz corpus through every fuzz target (scripts/fuzz.sh runs libFuzzer)"
for target in peer request command; do
  run .build/debug/chorus-fuzz "$target" "fuzz/corpus/$target"
done
say "running the test suite"
run swift test --skip-build
