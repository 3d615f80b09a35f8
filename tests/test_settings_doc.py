"""docs/settings.md's tables of the servers' and the clients' settings, held to the
programs' own tables: every flag there is, with its environment variable and its
default, and no other (Python's SETTINGS, and the Go programs' --help, which go-common's
settings package writes from theirs)."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from grpctest_client.cli import SETTINGS as PY_CLIENT
from grpctest_common.settings import Table
from grpctest_devtools.repo import REPO, command
from grpctest_server.cli import SETTINGS as PY_SERVER

DOC = REPO / "docs" / "settings.md"
# A row's note that says the setting exists in py-server only.
PY_ONLY = "py-server only"

# flag -> (default as written, environment variable, note)
Rows = dict[str, tuple[str, str, str]]


def doc_rows(heading: str) -> Rows:
    """The table under `## heading`; a row may hold several flags (`--cert`, `--key`)."""
    section = DOC.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ")[0]
    rows: Rows = {}
    for line in section.splitlines():
        if not line.startswith("| `--"):
            continue
        flags, default, note = (cell.strip() for cell in line.strip("|").split(" | ", 2))
        written = re.fullmatch(r"(.*) \((.*)\)", default)
        assert written, f"a default is written `value (VARIABLE)`: {line}"
        value, variables = written.groups()
        flag_names = re.findall(r"`(--[a-z-]+)`", flags)
        pairs = zip(flag_names, re.findall(r"`(\w+)`", variables), strict=True)
        rows |= {flag: (value.strip("`"), variable, note) for flag, variable in pairs}
    return rows


def go_settings(program: str) -> dict[str, tuple[str, str | None]]:
    """flag -> (environment variable, default or None) from the Go program's --help."""
    result = subprocess.run(
        [command(program), "--help"], capture_output=True, text=True, timeout=30
    )
    usage = result.stdout + result.stderr
    found = re.findall(r"^  (--[a-z-]+).*\n\s+.*\(env (\w+), (?:default (.*)|no default)\)$",
                       usage, re.MULTILINE)  # fmt: skip
    assert found, usage
    return {flag: (variable, default.strip('"') or None) for flag, variable, default in found}


def _same_default(written: str, go_default: str | None) -> bool:
    """The doc's default (as Python's --help writes it) is Go's, in Go's spelling."""
    if go_default is None:  # Go shows none where Python names what happens instead
        return True
    spelled = {"on": "true", "off": "false", "the hostname": socket.gethostname()}
    return spelled.get(written, written) == go_default


@pytest.mark.parametrize(
    ("heading", "python", "go"),
    [("The servers", PY_SERVER, "go-server"), ("The clients", PY_CLIENT, "go-client")],
)
def test_the_settings_tables_are_the_programs(heading: str, python: Table, go: str) -> None:
    rows = doc_rows(heading)
    ours = {s.flag: (s.default_text.strip("'"), s.variable) for s in python.settings}
    assert {flag: row[:2] for flag, row in rows.items()} == ours
    go_only = go_settings(go)
    assert set(go_only) == {flag for flag, row in rows.items() if PY_ONLY not in row[2]}
    for flag, (variable, default) in go_only.items():
        assert variable == rows[flag][1], flag
        assert _same_default(rows[flag][0], default), (flag, rows[flag][0], default)
