"""docs/changing-the-contract.md's example, done: a field with a rule added to the proto
in a copy of the repository, `make proto`, both servers built from the copy, and the
page's `grpcurl` call against each: the new rule is kept with no server code changed.

The copy shares this checkout's venv, bin/ and web/node_modules (symlinks); `make proto`
runs there with those taken as up to date (`make -o`), so nothing is installed and this
checkout is not touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpctest_devtools.ports import LOOPBACK, free_port
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import REPO, command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health

PAGE = REPO / "docs" / "changing-the-contract.md"
SECTION = "## Adding a field with a rule, end to end"
PROTO = Path("proto/grpctest/grpctest.proto")
# What `make proto` needs from this checkout, shared with the copy as they are.
SHARED = [".venv", "bin", "web/node_modules"]


def example() -> tuple[str, list[str], list[str]]:
    """The page's example: the message as changed, the commands, and the grpcurl sample."""
    text = PAGE.read_text(encoding="utf-8").split(SECTION, 1)[1]
    [message] = re.findall(r"```protobuf\n(.*?)```", text, re.S)
    [console] = re.findall(r"```console\n(.*?)```", text, re.S)
    lines = console.splitlines()
    commands = [re.sub(r"\s+#.*$", "", line[2:]) for line in lines if line.startswith("$ ")]
    sample = [line for line in lines if line and not line.startswith("$ ")]
    return message, commands, sample


def copy_of_the_repository(to: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        if (REPO / name).is_file() and not any(name.startswith(f"{s}/") for s in SHARED):
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, to / name)  # times kept: make sees nothing newer
    for shared in SHARED:
        (to / shared).symlink_to(REPO / shared)


def make_proto(copy: Path) -> None:
    """`make proto` in the copy, its set-up prerequisites taken as up to date."""
    up_to_date = [".venv/.synced", "web/node_modules/.package-lock.json", "bin/protoc-gen-go",
                  "bin/protoc-gen-go-grpc"]  # fmt: skip
    old = [arg for path in up_to_date for arg in ("-o", str(copy / path))]
    result = subprocess.run(
        ["make", *old, "proto"], cwd=copy, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A copy of the repository with the page's change made and `make proto` run; the
    page's grpcurl command and sample."""
    copy = tmp_path_factory.mktemp("repository")
    copy_of_the_repository(copy)
    message, commands, sample = example()
    assert commands[:2] == ["make proto", "make run"], commands
    proto = (copy / PROTO).read_text()
    changed_proto = re.sub(r"message Message \{.*?\n\}\n", message, proto, count=1, flags=re.S)
    assert changed_proto != proto
    (copy / PROTO).write_text(changed_proto)
    make_proto(copy)
    return copy, [commands[2], *sample]


def servers(copy: Path, logs: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """How `make run` would start each implementation from the copy."""
    go_server = logs / "go-server"
    subprocess.run(
        ["go", "build", "-o", str(go_server), "."], cwd=copy / "go-server", check=True,
        timeout=600, env={**os.environ, "CGO_ENABLED": "0"},
    )  # fmt: skip
    # py-server from this checkout, with the copy's generated stubs first on the path.
    python_path = {"PYTHONPATH": str(copy / "proto" / "python")}
    return [("python", [command("grpctest-server")], python_path), ("go", [str(go_server)], {})]


@contextlib.contextmanager
def serving(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Iterator[str]:
    """The server on a free port until the block ends; yields its address."""
    port = free_port()
    process = Process(name, [*argv, "--port", str(port)], logs / f"{name}.log", env)
    process.start()
    try:
        target = f"{LOOPBACK}:{port}"
        wait_until(
            lambda: process.check_alive() and check_health(target, "", 1) == "SERVING",
            60,
            f"{name} server from the copy",
        )
        yield target
    finally:
        process.stop(timeout=30)


# Builds go-server from the copy (its own go build; cached packages make it a minute).
@pytest.mark.timeout(900)
def test_a_field_with_a_rule_is_kept_by_both_servers(changed, tmp_path: Path) -> None:
    copy, (call, *sample) = changed
    # The stubs changed with the proto; this checkout's did not.
    generated = "proto/python/grpctest/grpctest_pb2.py"
    assert (copy / generated).read_bytes() != (REPO / generated).read_bytes()
    for name, argv, env in servers(copy, tmp_path):
        with serving(name, argv, env, tmp_path) as target:
            assert_as_the_page_shows(call.replace("localhost:8080", target), sample)
            # A sender the rule allows, or none, is answered as before.
            for sender in ("x" * 20, None):
                allowed = with_sender(call, sender).replace("localhost:8080", target)
                assert run(allowed).returncode == 0, allowed


def with_sender(call: str, sender: str | None) -> str:
    """The page's call with another sender, or with none."""
    replacement = "" if sender is None else f', "sender": "{sender}"'
    return re.sub(r', "sender": "[^"]*"', replacement, call)


def run(call: str) -> subprocess.CompletedProcess[str]:
    """A command of the page, as a user's shell runs it (bin/'s grpcurl on the PATH)."""
    path = f"{REPO / 'bin'}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", call], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": path},
    )  # fmt: skip


def assert_as_the_page_shows(call: str, sample: list[str]) -> None:
    """The call fails as the page shows: its lines up to the details exactly, and the
    details' field violation (grpcurl writes the JSON with each server's descriptors)."""
    result = run(call)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    head = sample.index("  Details:")
    assert lines[: head + 1] == sample[: head + 1], result.stderr
    shown = json.loads("\n".join(line.lstrip("\t 1)") for line in sample[head + 1 :]))
    details = json.loads("\n".join(line.lstrip("\t 1)") for line in lines[head + 1 :]))
    violations = details.get("fieldViolations") or details["field_violations"]
    assert violations == shown["fieldViolations"]
