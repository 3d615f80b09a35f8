"""A protoc plugin for gRPC's Python generator, so `buf generate` can run it.

grpcio-tools (pinned in uv.lock, the same release as the grpcio runtime) carries
gRPC's Python generator inside its own protoc, not as a plugin binary. As a plugin
(buf.gen.yaml: `local: [python, -m, grpctest_codegen.protoc_gen_grpc_python]`) this
reads buf's CodeGeneratorRequest, runs that protoc on exactly the descriptors buf
compiled, and answers with the files it wrote.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory(prefix="protoc-gen-grpc_python-") as workdir:
        descriptors = Path(workdir) / "descriptors.binpb"
        descriptors.write_bytes(FileDescriptorSet(file=request.proto_file).SerializeToString())
        out = Path(workdir) / "out"
        out.mkdir()
        options = f"{request.parameter}:" if request.parameter else ""
        argv = [
            "protoc",
            f"--descriptor_set_in={descriptors}",
            f"--grpc_python_out={options}{out}",
            *request.file_to_generate,
        ]
        if protoc.main(argv) != 0:
            response.error = f"grpc_tools.protoc failed: {' '.join(argv)}"
            return response
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
