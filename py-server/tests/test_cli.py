"""The server's settings: flags, environment fallbacks, readable usage errors."""

from __future__ import annotations

import pytest

from grpctest_server import cli


def test_settings_fall_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPCTEST_PORT", "50999")
    monkeypatch.setenv("GRPCTEST_REPLICA", "from-env")
    monkeypatch.setenv("GRPCTEST_REFLECTION", "false")
    settings = cli.settings_from(cli.parse_args([]))
    assert (settings.port, settings.replica, settings.reflection) == (50999, "from-env", False)
    assert cli.parse_args(["--port", "1234"]).port == 1234


def test_workers_share_the_port_only_when_there_are_several() -> None:
    assert cli.settings_from(cli.parse_args(["--workers", "2"])).reuse_port is True
    assert cli.settings_from(cli.parse_args([])).reuse_port is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--port", "abc"],
        ["--max-message-bytes", "0"],
        ["--log-level", "LOUD"],
        ["--workers", "2", "--port", "0"],
    ],
)
def test_bad_settings_are_a_readable_usage_error(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_boolean_that_is_not_one_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("GRPCTEST_REFLECTION", "maybe")
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args([])
    assert exit_.value.code == 2
    assert "GRPCTEST_REFLECTION: want one of" in capsys.readouterr().err
