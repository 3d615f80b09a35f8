"""Where the repository's files are.

The dev tooling works on a checkout of this repository (`make setup` installs it
editable), so its files are found next to this package's source.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENVOY_YAML = REPO / "envoy" / "envoy.yaml"
CERTS = REPO / "certs"
BIN = REPO / "bin"


def command(name: str) -> str:
    """An installed program: a console script of this environment (next to the running
    Python), a binary `make` put into bin/, or one on PATH."""
    for folder in (Path(sys.executable).parent, BIN):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found: `make tools` installs grpcurl and grpc-health-probe, "
            "`make test` every tool the tests use"
        )
    return found
