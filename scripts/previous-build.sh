#!/usr/bin/env bash
# Builds the previous release's chorus-node for the rolling-upgrade test (NodeTests/UpgradeTests)
# and keeps it in .build-previous/<commit>/chorus-node; later runs find it there. Prints the
# binary's path on its last line.
#
# The release is a commit of this repository with the same dependencies as this build, so it
# is compiled in this build's scratch path (.build), with the same flags (TEST_BUILD_FLAGS in
# scripts/lib.sh): the dependencies are compiled once for both, and only the release's own
# modules cost anything more. The next `swift build` compiles this build's modules again, so
# run this before building, never while tests use .build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The last release before cluster versions: it advertises nothing, and the current build
# treats it as cluster version 1.
PREVIOUS_RELEASE=c1dbeceb5bc5187bd8b030f32f8ef1afdc146a16
root=".build-previous/${PREVIOUS_RELEASE:0:12}"
binary="$root/chorus-node"

if [ -x "$binary" ]; then
  say "the previous release ${PREVIOUS_RELEASE:0:12} is built ($binary)"
  echo "$PWD/$binary"
  exit 0
fi
if ! git cat-file -e "$PREVIOUS_RELEASE^{commit}" 2>/dev/null; then
  echo "error: commit $PREVIOUS_RELEASE (the previous release) is not in this clone; fetch the full history ('git fetch --unshallow') to run the rolling-upgrade test" >&2
  exit 1
fi
say "building the previous release ${PREVIOUS_RELEASE:0:12} in .build (its dependencies are this build's), kept as $binary"
rm -rf "$root"
mkdir -p "$root/src"
git archive "$PREVIOUS_RELEASE" | tar -x -C "$root/src"
run swift build "${TEST_BUILD_FLAGS[@]}" --package-path "$root/src" --scratch-path .build --product chorus-node
cp .build/debug/chorus-node "$binary.partial"
mv "$binary.partial" "$binary"
rm -rf "$root/src"
echo "$PWD/$binary"
