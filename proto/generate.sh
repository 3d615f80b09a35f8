#!/usr/bin/env bash
# Generates the Python and Go code for every .proto under proto/.
#
#   proto/generate.sh [OUT_ROOT]
#
# OUT_ROOT defaults to the repository root; the drift test passes a temporary
# folder and compares. Needs $PYTHON (with grpcio-tools) and protoc-gen-go /
# protoc-gen-go-grpc on PATH: `make proto` provides all three, pinned.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo}
python=${PYTHON:-python3}

cd "$repo/proto"
protos=$(find . -name '*.proto' -printf '%P\n' | sort)

mkdir -p "$out/proto/python" "$out/go-client"
# protoc from grpcio-tools, so Python and Go stubs come from one pinned protoc.
"$python" -m grpc_tools.protoc -I . \
  --python_out="$out/proto/python" \
  --pyi_out="$out/proto/python" \
  --grpc_python_out="$out/proto/python" \
  --go_out="$out/go-client" --go_opt=module=grpctest/go-client \
  --go-grpc_out="$out/go-client" --go-grpc_opt=module=grpctest/go-client \
  $protos
