# Shared by the quick-start scripts: print each step, install what is missing.
# Each step says when it began, in seconds since the script started: a CI log shows where
# the time goes.

# How the tests' build compiles, in `scripts/test.sh` and in `scripts/previous-build.sh`, which
# shares its scratch path (the same flags, or every dependency compiles twice):
# - every dependency optimized (`-O` for Swift, `-O2` for C): a test's nodes spend most of
#   their CPU in NIO, NIOSSL, HTTP/2, gRPC and protobuf, and compiled unoptimized these made
#   every cluster test CPU-bound; they compile once, and a change rebuilds only our modules;
# - our own modules unoptimized, as `Package.swift` keeps them (`unoptimized`), so they
#   compile fast.
# (The index store stays: on Linux, SwiftPM finds the tests through it.)
# A test run by hand after `scripts/test.sh` needs them too, or SwiftPM rebuilds everything:
# `swift test -Xswiftc -O -Xcc -O2 --filter NAME`.
TEST_BUILD_FLAGS=(-Xswiftc -O -Xcc -O2)

say() { printf '\033[1m==> [%4ds] %s\033[0m\n' "$SECONDS" "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

# Installs Debian packages, or says how when not root.
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $* missing, and installing needs root: run 'sudo apt-get install -y $*'" >&2
    exit 1
  fi
  run apt-get update -qq
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq "$@"
}

ensure_lmdb() {
  if pkg-config --exists lmdb 2>/dev/null; then
    say "liblmdb-dev is installed ($(pkg-config --modversion lmdb))"
    return
  fi
  say "installing liblmdb-dev (LMDB headers and library)"
  apt_install liblmdb-dev
}

# The fault-injection suite builds hosts from network namespaces (iproute2) and drops
# packets with iptables inside them.
ensure_netlab() {
  if command -v iptables >/dev/null && command -v ip >/dev/null; then
    say "iproute2 and iptables are installed"
    return
  fi
  say "installing iproute2 and iptables (for the fault-injection suite)"
  apt_install iproute2 iptables
}

# Foreign gRPC clients for the interoperability tests: grpc-go from Debian (built in GOPATH
# mode, no module download) and Python's grpcio from PyPI. Builds the Go load generators to
# .build/interop: chorus-go-load (the interoperability tests) and unary-bench (the comparison
# with etcd through a foreign client).
ensure_interop() {
  if command -v go >/dev/null && [ -d /usr/share/gocode/src/google.golang.org/grpc ]; then
    say "golang-go and golang-google-grpc-dev are installed ($(go version | cut -d' ' -f3))"
  else
    say "installing golang-go and golang-google-grpc-dev (a foreign gRPC client for the tests)"
    apt_install golang-go golang-google-grpc-dev
  fi
  if python3 -c 'import grpc' 2>/dev/null; then
    say "Python's grpcio is installed"
  else
    say "installing Python's grpcio (a second foreign gRPC client for the tests)"
    run python3 -m pip install -q grpcio
  fi
  mkdir -p .build/interop
  # GOPATH mode: Debian's grpc-go, and the programs with their shared wire package.
  local gopath="/usr/share/gocode:$PWD/tools/interop/go"
  run env GO111MODULE=off GOPATH="$gopath" GOCACHE="$PWD/.build/interop/go-cache" go build -o .build/interop/chorus-go-load chorusinterop/chorus-load
  run env GO111MODULE=off GOPATH="$gopath" GOCACHE="$PWD/.build/interop/go-cache" go build -o .build/interop/unary-bench chorusinterop/unary-bench
  run env GO111MODULE=off GOPATH="$gopath" GOCACHE="$PWD/.build/interop/go-cache" go build -o .build/interop/bare-server chorusinterop/bare-server
  export CHORUS_INTEROP=1
}

# The browser tests: Debian's Chromium and its WebDriver, driven by Selenium (PyPI) under pytest.
ensure_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    say "chromium and chromium-driver are installed ($(chromium --version 2>/dev/null | head -1))"
  else
    say "installing chromium and chromium-driver (the web client's browser tests)"
    apt_install chromium chromium-driver
  fi
  if python3 -c 'import selenium, pytest' 2>/dev/null; then
    say "Selenium and pytest are installed"
  else
    say "installing Selenium and pytest (they drive the browser tests)"
    run python3 -m pip install -q selenium pytest
  fi
}

# The metrics test: Debian's Prometheus scrapes a cluster and is queried over its HTTP API.
ensure_prometheus() {
  if [ -x /usr/bin/prometheus ]; then
    say "prometheus is installed ($(/usr/bin/prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3))"
    return
  fi
  say "installing prometheus (the metrics test scrapes a real cluster with it)"
  apt_install --no-install-recommends prometheus
}

# The client address of the leader a `chorus-node local-cluster` log last named, once it names
# one (up to 20 s; fails if none).
local_cluster_leader() {
  local log=$1 leader=
  for _ in $(seq 1 100); do
    leader=$(grep -o 'leader: node [0-9]* at [0-9.:]*' "$log" | tail -1 | awk '{print $5}') || true
    [ -n "$leader" ] && { echo "$leader"; return 0; }
    sleep 0.2
  done
  return 1
}
