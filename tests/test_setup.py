"""What the Makefile installs, and when: `make setup` (the local run's set-up) builds only
the Python workspace and go-client; a Go tool is rebuilt only when its version changes;
Debian packages are never pinned to a build that an update can remove."""

from __future__ import annotations

import re
import subprocess

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


def test_setup_builds_only_the_python_workspace_and_go_client() -> None:
    commands = make("-B", "setup")
    assert "uv sync --locked" in commands
    assert "go build" in commands
    for other in ("go install", "apt-get", "npm", "debian-packages"):
        assert other not in commands


@pytest.mark.parametrize("tool", ["grpcurl", "grpc-health-probe", "ghz", "kustomize"])
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
