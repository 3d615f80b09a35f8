"""The contract: generated code is exactly what `make proto` produces (no drift, no hand
edits), and a client built from the original article's proto works unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import tool
from stack import REPO

GENERATED = [
    "proto/python/grpctest/grpctest_pb2.py",
    "proto/python/grpctest/grpctest_pb2.pyi",
    "proto/python/grpctest/grpctest_pb2_grpc.py",
    "go-client/grpctestpb/grpctest.pb.go",
    "go-client/grpctestpb/grpctest_grpc.pb.go",
]


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    plugins = Path(tool("protoc-gen-go")).parent
    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{plugins}:{os.environ['PATH']}"}
    subprocess.run([str(REPO / "proto" / "generate.sh"), str(tmp_path)], env=env, check=True,
                   timeout=120)
    produced = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert produced == sorted(GENERATED), "generate.sh produced other files than expected"
    stale = [f for f in GENERATED if (tmp_path / f).read_bytes() != (REPO / f).read_bytes()]
    assert not stale, f"generated code is out of date with proto/: {stale}; run `make proto`"


def test_generated_code_carries_do_not_edit_headers() -> None:
    for name in GENERATED:
        head = (REPO / name).read_text(encoding="utf-8")[:2000]
        assert "DO NOT EDIT" in head, name


ARTICLE_PROTO = """
syntax = "proto3";
package grpctest;
service Grpctest {
  rpc GetServerResponse(Message) returns (MessageResponse) {}
}
message Message {
  string message = 1;
}
message MessageResponse {
  string message = 1;
  bool received = 2;
}
"""

ARTICLE_CLIENT = """
import sys
import grpc
from grpctest import grpctest_pb2, grpctest_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = grpctest_pb2_grpc.GrpctestStub(channel)
    response = stub.GetServerResponse(grpctest_pb2.Message(message="article"), timeout=5)
    print(response.message, response.received)
"""


def test_client_built_from_the_articles_proto_works_unchanged(stack, tmp_path: Path) -> None:
    (tmp_path / "grpctest").mkdir()
    (tmp_path / "grpctest" / "grpctest.proto").write_text(ARTICLE_PROTO)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
                    f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                    "grpctest/grpctest.proto"], check=True, timeout=60)
    (tmp_path / "article_client.py").write_text(ARTICLE_CLIENT)
    result = subprocess.run([sys.executable, str(tmp_path / "article_client.py"), stack.target],
                            env={**os.environ, "PYTHONPATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'Hello I am up and running received "article" message from you True\n'
