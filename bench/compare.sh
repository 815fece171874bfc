#!/usr/bin/env bash
# Benchmarks Chorus and etcd side by side on this machine and writes the table into
# docs/BENCHMARKS.md: both as 5-node clusters on loopback with fsync on, every scenario at
# 1, 16 and 128 callers alternately against each, through our Swift client and through a
# foreign one (grpc-go, one unary call per operation, over one and over four connections),
# both failover probes, and replay; then draws throughput against latency into a PNG.
#
#   bash bench/compare.sh                 # the full run (about 15 minutes)
#   bash bench/compare.sh --duration 3    # extra options go to `chorus-lab compare`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_lmdb
# The foreign client (grpc-go, unary calls) that drives both systems with the same code.
ensure_interop
if ! command -v etcd >/dev/null; then
  say "installing etcd-server and etcd-client (the system compared against)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: etcd is missing and installing it needs root: run 'sudo apt-get install -y etcd-server etcd-client'" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq etcd-server etcd-client
fi

say "building release binaries"
run swift build -c release
bin=$(swift build -c release --show-bin-path)

# The picture of the run: matplotlib from PyPI.
if ! python3 -c "import matplotlib" 2>/dev/null; then
  say "installing matplotlib (draws the comparison's picture)"
  run python3 -m pip install --quiet matplotlib
fi

say "running the comparison (report goes into docs/BENCHMARKS.md, the picture into docs/benchmarks/compare.png)"
mkdir -p docs/benchmarks
run "$bin/chorus-lab" compare --output docs/BENCHMARKS.md --points docs/benchmarks/compare.json "$@"
run python3 bench/plot_compare.py docs/benchmarks/compare.json docs/benchmarks/compare.png
