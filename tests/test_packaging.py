"""The Python projects install with plain pip into a clean virtualenv, and their console
scripts work there: no import path set up by the repository, only installed packages."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from grpctest_devtools.ports import free_port
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import REPO
from grpctest_devtools.waiting import wait_until

PROJECTS = ["proto/python", "py-common", "py-server", "py-client"]


# The install's own timeout (600 s) must be the one that counts, not pytest's global 300 s.
# Minutes of building and installing: make test-heavy (make test-all), not before every commit.
@pytest.mark.heavy
@pytest.mark.timeout(700)
def test_pip_install_gives_working_console_scripts(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    install = subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", *(REPO / p for p in PROJECTS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    port = free_port()
    server = Process(
        "server",
        [
            str(bin_dir / "grpctest-server"),
            "--port",
            str(port),
            "--replica",
            "pip-installed",
            "--drain-seconds",
            "0",
        ],
    )
    server.start()
    try:
        probe = [str(bin_dir / "grpctest-healthcheck"), "--target", f"127.0.0.1:{port}"]
        wait_until(
            lambda: subprocess.run(probe, capture_output=True, timeout=30).returncode == 0,
            30,
            "the pip-installed server to be SERVING",
        )
        client = subprocess.run(
            [bin_dir / "grpctest-client", "--target", f"127.0.0.1:{port}", "--message", "pip"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    finally:
        exit_code = server.stop(timeout=10)
    assert client.returncode == 0, client.stderr
    assert exit_code == 0
    assert client.stdout.startswith('[1/1] pip-installed: Hello I am up and running received "pip"')
