#!/usr/bin/env bash
# Builds the previous release of chorus-node next to the current build, for the rolling-upgrade
# test (NodeTests/RollingUpgradeTests). The release is a commit of this repository, exported
# into its own scratch path and built once: later runs find the binary under .build-previous/.
# Prints the path of the binary on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The last release before cluster versions: it advertises nothing, and the current build
# treats it as cluster version 1.
PREVIOUS_RELEASE=c1dbeceb5bc5187bd8b030f32f8ef1afdc146a16
root=".build-previous/${PREVIOUS_RELEASE:0:12}"
binary="$root/build/debug/chorus-node"

if [ -x "$binary" ] && [ -f "$root/built" ]; then
  say "the previous release ${PREVIOUS_RELEASE:0:12} is built ($binary)"
  echo "$PWD/$binary"
  exit 0
fi
if ! git cat-file -e "$PREVIOUS_RELEASE^{commit}" 2>/dev/null; then
  echo "error: commit $PREVIOUS_RELEASE (the previous release) is not in this clone; fetch the full history ('git fetch --unshallow') to run the rolling-upgrade test" >&2
  exit 1
fi
say "building the previous release ${PREVIOUS_RELEASE:0:12} into $root (once; it is cached there)"
rm -rf "$root"
mkdir -p "$root/src"
git archive "$PREVIOUS_RELEASE" | tar -x -C "$root/src"
run swift build --package-path "$root/src" --scratch-path "$root/build" --product chorus-node
touch "$root/built"
echo "$PWD/$binary"
