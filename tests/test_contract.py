"""The contract: generated code (Python, Go, JavaScript, Envoy's descriptor set, the web
bundle) is exactly what `make proto` and `make web` produce (no drift, no hand edits),
buf finds no breaking change against the original article's proto, and a client
generated from that proto works unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import google.api.annotations_pb2

from grpctest_devtools.repo import REPO, command

ARTICLE_PROTO = REPO / "tests" / "fixtures" / "article-proto"
# buf.gen.yaml, then buf.gen.vendored.yaml (what `make proto` runs).
TEMPLATES = ["buf.gen.yaml", "buf.gen.vendored.yaml"]
GENERATED = [
    "proto/python/buf/validate/validate_pb2.py",
    "proto/python/buf/validate/validate_pb2.pyi",
    "proto/python/grpctest/grpctest_pb2.py",
    "proto/python/grpctest/grpctest_pb2.pyi",
    "proto/python/grpctest/grpctest_pb2_grpc.py",
    "proto/python/grpctest/grpctest_pb2_grpc.pyi",
    "proto/go/grpctest.pb.go",
    "proto/go/grpctest_grpc.pb.go",
    "web/src/gen/google/api/annotations_pb.js",
    "web/src/gen/google/api/http_pb.js",
    "web/src/gen/google/rpc/error_details_pb.js",
    "web/src/gen/grpctest/grpctest_pb.js",
]
DESCRIPTOR_SET = "envoy/grpctest.binpb"
WEB_BUNDLE = ["web/dist/app.js", "web/dist/index.html"]


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("buf"), *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    # The plugins buf.gen.yaml names (python, protoc-gen-go, ...) come first on PATH.
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), str(REPO / "bin"), os.environ["PATH"]]
    )
    for template in TEMPLATES:
        result = subprocess.run(
            [command("buf"), "generate", "--template", template, "--output", str(tmp_path)],
            cwd=REPO,
            env={**os.environ, "PATH": path},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    produced = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert produced == sorted(GENERATED), "buf generate produced other files than expected"
    stale = [f for f in GENERATED if (tmp_path / f).read_bytes() != (REPO / f).read_bytes()]
    assert not stale, f"generated code is out of date with proto/: {stale}; run `make proto`"


def test_envoys_descriptor_set_matches_the_proto(tmp_path: Path) -> None:
    out = tmp_path / "grpctest.binpb"
    result = buf("build", "--as-file-descriptor-set", "--exclude-source-info", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (REPO / DESCRIPTOR_SET).read_bytes(), (
        f"{DESCRIPTOR_SET} is out of date with proto/; run `make proto`"
    )


def test_web_bundle_matches_its_source(tmp_path: Path) -> None:
    result = subprocess.run(
        ["node", "build.mjs", str(tmp_path)], cwd=REPO / "web", capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stale = [
        f for f in WEB_BUNDLE if (tmp_path / Path(f).name).read_bytes() != (REPO / f).read_bytes()
    ]
    assert not stale, f"the web page is out of date with web/src: {stale}; run `make web`"


def test_vendored_google_protos_are_the_runtimes_own() -> None:
    """proto/google/ is exactly what the pinned googleapis-common-protos ships (the
    package the Python stubs and py-server import at run time). proto/buf/validate/ is
    checked against protovalidate's generated types by go-server's tests."""
    shipped = Path(google.api.annotations_pb2.__file__).parent.parent
    vendored = sorted((REPO / "proto" / "google").rglob("*.proto"))
    assert [p.relative_to(REPO / "proto" / "google").as_posix() for p in vendored] == [
        "api/annotations.proto", "api/http.proto", "rpc/error_details.proto",
    ]  # fmt: skip
    for path in vendored:
        original = shipped / path.relative_to(REPO / "proto" / "google")
        assert path.read_bytes() == original.read_bytes(), path


def test_generated_code_is_marked_generated() -> None:
    for name in [*GENERATED, *WEB_BUNDLE]:
        head = (REPO / name).read_text(encoding="utf-8")[:2000]
        # protoc's .pyi generator and the bundler write no header; .gitattributes marks
        # those instead.
        marked = "DO NOT EDIT" in head or "@generated" in head
        assert marked or name.endswith((".pyi", ".html")) or name.startswith("web/dist"), name
    attributes = subprocess.run(
        ["git", "check-attr", "linguist-generated", "--", *GENERATED, *WEB_BUNDLE, DESCRIPTOR_SET],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert all(line.endswith(": true") for line in attributes), attributes


def test_contract_has_no_breaking_change_against_the_articles_proto() -> None:
    result = buf("breaking", "--against", str(ARTICLE_PROTO))
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_renumbered_field(tmp_path: Path) -> None:
    """The guard works: the article's proto with one field renumbered is breaking."""
    changed = tmp_path / "grpctest"
    changed.mkdir()
    text = (ARTICLE_PROTO / "grpctest" / "grpctest.proto").read_text()
    (changed / "grpctest.proto").write_text(
        text.replace("bool received = 2;", "bool received = 4;")
    )
    result = buf(
        "breaking", str(tmp_path), "--against", str(ARTICLE_PROTO), "--error-format", "json"
    )
    assert result.returncode == 100, result.stderr  # buf: the check found problems
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["type"], f["start_line"]) for f in found] == [("FIELD_NO_DELETE", 16)], found
    assert '"received" on message "MessageResponse"' in found[0]["message"], found


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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ARTICLE_PROTO}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            "grpctest/grpctest.proto",
        ],
        check=True,
        timeout=60,
    )
    (tmp_path / "article_client.py").write_text(ARTICLE_CLIENT)
    # A script's own folder comes first on Python's path, so `import grpctest` finds the
    # article's stubs there, not the workspace's.
    result = subprocess.run(
        [sys.executable, str(tmp_path / "article_client.py"), stack.target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'Hello I am up and running received "article" message from you True\n'
