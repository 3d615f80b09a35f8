"""The table-built parser: flags, environment fallbacks, kinds, usage errors, --help.

The Go programs follow the same rules (go-common's settings package); tests/ checks that
both clients print the same message for the same bad value.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pytest

from grpctest_common import settings
from grpctest_common.settings import Setting, Table

# Exactly what Go's strconv.ParseBool accepts (go-client's tests check the Go side).
GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]

TABLE = Table(
    Setting("--count", settings.WHOLE_NUMBER, 1, "calls to make"),
    Setting("--ratio", settings.NUMBER, 0.5, "a share"),
    Setting("--timeout", settings.SECONDS, 5.0, "deadline", shown="5"),
    Setting("--tls", settings.BOOLEAN, False, "connect with TLS"),
    Setting("--mode", settings.choice(("unary", "chat")), "unary", "what to call"),
    Setting("--log-level", settings.choice(("DEBUG", "INFO"), str.upper), "INFO", "log level"),
    Setting("--ca", settings.PATH, None, "CA to trust", shown="the system's trust store"),
    Setting("--target", settings.TEXT, "localhost:8080", "where to", env="GRPCTEST_HEALTH_TARGET"),
    Setting("--service", settings.TEXT, "grpctest.Grpctest", "what to check", env=None),
    Setting("--replica", settings.TEXT, lambda: "from-a-function", "name", shown="the hostname"),
)


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in TABLE.settings:
        if setting.variable:
            monkeypatch.delenv(setting.variable, raising=False)
    monkeypatch.delenv("GRPCTEST_SERVICE", raising=False)


def parse(*argv: str):
    return parse_args(argv)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return TABLE.parse(TABLE.parser("prog", "A program."), list(argv))


def test_defaults_when_nothing_is_given() -> None:
    args = parse()
    assert (args.count, args.ratio, args.timeout, args.tls) == (1, 0.5, 5.0, False)
    assert (args.mode, args.log_level, args.ca) == ("unary", "INFO", None)
    assert (args.target, args.service, args.replica) == (
        "localhost:8080",
        "grpctest.Grpctest",
        "from-a-function",
    )


def test_good_flag_values_of_every_kind() -> None:
    args = parse(
        "--count", "7", "--ratio", "1.5", "--timeout", "0.25", "--tls", "--mode", "chat",
        "--log-level", "debug", "--ca", "certs/ca.crt", "--target", "envoy:8443",
    )  # fmt: skip
    assert (args.count, args.ratio, args.timeout, args.tls) == (7, 1.5, 0.25, True)
    assert (args.mode, args.log_level, args.ca) == ("chat", "DEBUG", Path("certs/ca.crt"))
    assert args.target == "envoy:8443"
    assert parse("--no-tls").tls is False
    assert parse("--ca", "").ca is None  # an empty path is none, as in Go


def test_the_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPCTEST_COUNT", "7")
    assert parse().count == 7
    assert parse("--count", "2").count == 2
    monkeypatch.setenv("GRPCTEST_TLS", "true")
    assert parse().tls is True
    assert parse("--no-tls").tls is False


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPCTEST_COUNT", "")
    monkeypatch.setenv("GRPCTEST_TLS", "")
    assert (parse().count, parse().tls) == (1, False)


def test_a_variable_named_in_the_table_and_a_setting_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRPCTEST_HEALTH_TARGET", "replica:50051")
    monkeypatch.setenv("GRPCTEST_TARGET", "not-this-one:1")
    monkeypatch.setenv("GRPCTEST_SERVICE", "ignored")
    args = parse()
    assert (args.target, args.service) == ("replica:50051", "grpctest.Grpctest")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 5.0), ("0.5", 0.5), (".5", 0.5), ("500ms", 0.5), ("2s", 2.0), ("1.5s", 1.5),
        ("1m", 60.0), ("1h", 3600.0), ("1m30s", 90.0), ("-1s", -1.0),
    ],
)  # fmt: skip
def test_seconds_plain_or_with_a_unit(text: str, seconds: float) -> None:
    assert settings.parse_seconds(text) == pytest.approx(seconds)
    assert parse(f"--timeout={text}").timeout == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ms", "5x", "5 s", "1d", "s5", "1.2.3s"])
def test_seconds_that_are_not(text: str) -> None:
    with pytest.raises(ValueError, match="want seconds"):
        settings.parse_seconds(text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--count", "abc"], '--count: want a whole number, got "abc"'),
        (["--count", "1.5"], '--count: want a whole number, got "1.5"'),
        (["--ratio", "half"], '--ratio: want a number, got "half"'),
        (["--timeout", "5 min"], '--timeout: want seconds (like 5, 0.5 or 500ms), got "5 min"'),
        (["--mode", "bidi"], '--mode: want one of unary, chat, got "bidi"'),
        (["--log-level", "loud"], '--log-level: want one of DEBUG, INFO, got "loud"'),
        (["--count", 'a"b\\c\n'], r'--count: want a whole number, got "a\"b\\c\n"'),
    ],
)  # fmt: skip
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
    usage_error, argv: list[str], message: str
) -> None:
    assert usage_error(parse_args, argv) == f"prog: error: {message}"


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("GRPCTEST_COUNT", "abc", 'GRPCTEST_COUNT (for --count): want a whole number, got "abc"'),
        ("GRPCTEST_TIMEOUT", "soon",
         'GRPCTEST_TIMEOUT (for --timeout): want seconds (like 5, 0.5 or 500ms), got "soon"'),
        ("GRPCTEST_TLS", "yes",
         "GRPCTEST_TLS (for --tls): want one of 0 1 F FALSE False T TRUE True f false t true, "
         'got "yes"'),
        ("GRPCTEST_MODE", "fast",
         'GRPCTEST_MODE (for --mode): want one of unary, chat, got "fast"'),
        ("GRPCTEST_HEALTH_TARGET", "", None),
    ],
)  # fmt: skip
def test_a_bad_environment_value_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    usage_error,
    variable: str,
    text: str,
    message: str | None,
) -> None:
    monkeypatch.setenv(variable, text)
    if message is None:  # empty: unset, not an error
        assert parse().target == "localhost:8080"
        return
    assert usage_error(parse_args, []) == f"prog: error: {message}"


def test_a_bad_variable_does_not_matter_when_the_flag_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRPCTEST_COUNT", "abc")
    assert parse("--count", "3").count == 3


@pytest.mark.parametrize("text", GO_TRUE)
def test_true_spellings(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    assert settings.parse_bool(text) is True
    monkeypatch.setenv("GRPCTEST_TLS", text)
    assert parse().tls is True


@pytest.mark.parametrize("text", GO_FALSE)
def test_false_spellings(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    assert settings.parse_bool(text) is False
    monkeypatch.setenv("GRPCTEST_TLS", text)
    assert parse("--tls").tls is True  # the flag wins
    assert parse().tls is False


@pytest.mark.parametrize("text", ["yes", "on", "no", "off", "tRuE", " 1", "2"])
def test_anything_else_is_not_a_boolean(text: str) -> None:
    with pytest.raises(ValueError, match="want one of"):
        settings.parse_bool(text)


def test_help_lists_each_setting_with_its_variable_and_default(help_text) -> None:
    text = help_text(parse_args)
    for expected in [
        "calls to make (env GRPCTEST_COUNT, default: 1)",
        "deadline (env GRPCTEST_TIMEOUT, default: 5)",
        "--tls, --no-tls connect with TLS (env GRPCTEST_TLS, default: off)",
        "what to call (env GRPCTEST_MODE, default: unary)",
        "CA to trust (env GRPCTEST_CA, default: the system's trust store)",
        "where to (env GRPCTEST_HEALTH_TARGET, default: localhost:8080)",
        "what to check (default: grpctest.Grpctest)",
        "name (env GRPCTEST_REPLICA, default: the hostname)",
    ]:
        assert expected in text


def test_quote_escapes_as_gos_percent_q() -> None:
    # Go: fmt.Sprintf("%q", "é\t\x01\x7f\"") == `"é\t\x01\x7f\""`
    assert settings.quote('é\t\x01\x7f"') == '"é\\t\\x01\\x7f\\""'
