"""The server's settings: flags, environment fallbacks, readable usage errors."""

from __future__ import annotations

import socket

import pytest

from grpctest_server import cli, healthcheck


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
        ["--max-concurrent-streams", "0"],
        ["--max-streams", "-1"],
    ],
)
def test_bad_settings_are_a_readable_usage_error(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_boolean_that_is_not_one_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, usage_error
) -> None:
    monkeypatch.setenv("GRPCTEST_REFLECTION", "maybe")
    assert usage_error(cli.parse_args, []) == (
        "grpctest-server: error: GRPCTEST_REFLECTION (for --reflection): want one of "
        '0 1 F FALSE False T TRUE True f false t true, got "maybe"'
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--port", "abc"], {}, '--port: want a whole number, got "abc"'),
        ([], {"GRPCTEST_PORT": "x"}, 'GRPCTEST_PORT (for --port): want a whole number, got "x"'),
        (["--log-level", "LOUD"], {},
         '--log-level: want one of DEBUG, INFO, WARNING, ERROR, got "LOUD"'),
        ([], {"GRPCTEST_EVENT_LOOP": "fast"},
         'GRPCTEST_EVENT_LOOP (for --event-loop): want one of uvloop, asyncio, got "fast"'),
        ([], {"GRPCTEST_DRAIN_SECONDS": "soon"}, "GRPCTEST_DRAIN_SECONDS (for --drain-seconds): "
         'want seconds (like 5, 0.5 or 500ms), got "soon"'),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_names_the_flag_or_variable(
    usage_error, argv: list[str], env: dict, message: str
) -> None:
    assert usage_error(cli.parse_args, argv, env) == f"grpctest-server: error: {message}"


def test_durations_take_a_unit_and_log_levels_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parse_args(
        ["--drain-seconds", "500ms", "--grace-seconds", "1m", "--log-level", "debug"]
    )
    assert (args.drain_seconds, args.grace_seconds, args.log_level) == (0.5, 60.0, "DEBUG")
    monkeypatch.setenv("GRPCTEST_REPLICA", "")
    assert cli.parse_args([]).replica == socket.gethostname()


def test_help_names_every_variable_and_default(help_text) -> None:
    text = help_text(cli.parse_args)
    assert all(f"env {s.variable}, default: " in text for s in cli.SETTINGS.settings)
    assert "(env GRPCTEST_REPLICA, default: the hostname)" in text


def test_healthcheck_settings(monkeypatch: pytest.MonkeyPatch, capsys, usage_error) -> None:
    # Nothing listens on port 1: the check fails at once, exit 1, with the status.
    monkeypatch.setenv("GRPCTEST_HEALTH_TARGET", "127.0.0.1:1")
    with pytest.raises(SystemExit) as exit_:
        healthcheck.main(["--timeout", "500ms"])
    assert exit_.value.code == 1
    assert capsys.readouterr().out == "127.0.0.1:1 grpctest.Grpctest: UNAVAILABLE\n"
    assert usage_error(healthcheck.main, ["--timeout", "soon"]) == (
        'grpctest-healthcheck: error: --timeout: want seconds (like 5, 0.5 or 500ms), got "soon"'
    )
