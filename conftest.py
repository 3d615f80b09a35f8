"""Fixtures for the programs' unit tests (py-common, py-server, py-client): their
command lines, as the table-built parsers of grpctest_common.settings make them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

Parse = Callable[[Sequence[str]], object]


@pytest.fixture
def usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    """Parses `argv` with a program's parse function (and `env` set), checks that it is
    a usage error (exit 2), and gives its line, `PROG: error: MESSAGE`."""

    def run(parse: Parse, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as exit_:
            parse(argv)
        assert exit_.value.code == 2
        return capsys.readouterr().err.splitlines()[-1]

    return run


@pytest.fixture
def help_text(capsys: pytest.CaptureFixture[str]) -> Callable[[Parse], str]:
    """A program's --help as one line (argparse wraps it at the terminal's width)."""

    def run(parse: Parse) -> str:
        with pytest.raises(SystemExit) as exit_:
            parse(["--help"])
        assert exit_.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    return run
