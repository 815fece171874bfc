#!/usr/bin/env bash
# Regenerates the Swift code for every .proto under Protos/ and writes it next to the module
# that owns it. Run after editing a .proto; commit the output. Needs `protoc` (Debian's
# protobuf-compiler); the two Swift plugins are built from the package's own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
  echo "+ apt-get install -y protobuf-compiler"
  apt-get install -y protobuf-compiler
fi

echo "+ swift build --product protoc-gen-swift --product protoc-gen-grpc-swift-2"
swift build --product protoc-gen-swift
swift build --product protoc-gen-grpc-swift-2
bin=$(swift build --show-bin-path)

# Messages only: the state machine's commands and rows.
echo "+ protoc commands.proto state.proto -> Sources/Projections/Generated"
protoc --plugin="$bin/protoc-gen-swift" -I Protos \
  --swift_out=Sources/Projections/Generated --swift_opt=Visibility=Public \
  Protos/chorus/v1/commands.proto Protos/chorus/v1/state.proto

# Client and peer APIs (messages and gRPC stubs), shared by Node and Client.
shopt -s nullglob
api=(Protos/chorus/v1/chat.proto Protos/chorus/v1/raft.proto Protos/chorus/v1/admin.proto Protos/grpc/health/v1/health.proto)
present=()
for f in "${api[@]}"; do [ -f "$f" ] && present+=("$f"); done
if [ ${#present[@]} -gt 0 ]; then
  mkdir -p Sources/API/Generated
  echo "+ protoc ${present[*]} -> Sources/API/Generated"
  protoc --plugin="$bin/protoc-gen-swift" --plugin="$bin/protoc-gen-grpc-swift-2" -I Protos \
    --swift_out=Sources/API/Generated --swift_opt=Visibility=Public \
    --grpc-swift-2_out=Sources/API/Generated --grpc-swift-2_opt=Visibility=Public \
    "${present[@]}"
fi
# A minimal client of etcd's v3 API, for the comparison benchmarks in chorus-lab.
mkdir -p tools/ChorusLab/Generated
echo "+ protoc etcd/kv.proto -> tools/ChorusLab/Generated"
protoc --plugin="$bin/protoc-gen-swift" --plugin="$bin/protoc-gen-grpc-swift-2" -I Protos \
  --swift_out=tools/ChorusLab/Generated --swift_opt=Visibility=Internal \
  --grpc-swift-2_out=tools/ChorusLab/Generated --grpc-swift-2_opt=Visibility=Internal,Server=false \
  Protos/etcd/kv.proto
echo "done"
