# Shared by the quick-start scripts: print each step, install what is missing.
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

ensure_lmdb() {
  if pkg-config --exists lmdb 2>/dev/null; then
    say "liblmdb-dev is installed ($(pkg-config --modversion lmdb))"
    return
  fi
  say "installing liblmdb-dev (LMDB headers and library)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: liblmdb-dev is missing and installing it needs root: run 'sudo apt-get install -y liblmdb-dev'" >&2
    exit 1
  fi
  run apt-get update -qq
  run apt-get install -y -qq liblmdb-dev
}
