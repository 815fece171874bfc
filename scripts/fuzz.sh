#!/usr/bin/env bash
# Fuzzes one target with libFuzzer: scripts/fuzz.sh peer|request|command [SECONDS] [libFuzzer options...]
# Builds chorus-fuzz with coverage instrumentation and AddressSanitizer into .build-fuzz,
# starts from the seed corpus in fuzz/corpus/TARGET (new inputs that reach new code are added
# to fuzz/work/TARGET, not committed) and writes any crashing input to fuzz/findings/.
# Replay a finding with the plain build: swift build --product chorus-fuzz &&
#   .build/debug/chorus-fuzz TARGET fuzz/findings/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target=${1:?usage: scripts/fuzz.sh peer|request|command [SECONDS] [libFuzzer options...]}
seconds=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))

ensure_lmdb
say "building chorus-fuzz for libFuzzer (release, -sanitize=fuzzer,address) in .build-fuzz"
# lld: gold fails with an internal error on the sanitized objects.
run swift build -c release --product chorus-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DCHORUS_LIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
bin=$(swift build -c release --scratch-path .build-fuzz --show-bin-path)

mkdir -p "fuzz/work/$target" fuzz/findings
say "fuzzing '$target' for $seconds s"
run "$bin/chorus-fuzz" "$target" "fuzz/work/$target" "fuzz/corpus/$target" \
  -max_total_time="$seconds" -max_len=65536 -artifact_prefix=fuzz/findings/ -print_final_stats=1 "$@"
