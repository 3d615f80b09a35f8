"""The Python client's command line (calls are tested end to end in tests/)."""

from __future__ import annotations

import collections
import json

import pytest

from grpctest.grpctest_pb2 import MessageResponse
from grpctest_client import cli


def test_defaults_and_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.parse_args([]).target == "localhost:8080"
    monkeypatch.setenv("GRPCTEST_TARGET", "envoy:8080")
    monkeypatch.setenv("GRPCTEST_COUNT", "7")
    monkeypatch.setenv("GRPCTEST_TLS", "1")
    args = cli.parse_args([])
    assert (args.target, args.count, args.tls) == ("envoy:8080", 7, True)
    assert cli.parse_args(["--count", "2"]).count == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--count", "0"],
        ["--timeout", "-1"],
        ["--count", "x"],
        ["--ca", "/no/such/ca.crt"],
        ["--output", "yaml"],
    ],
)
def test_bad_flags_are_a_usage_error(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_boolean_that_is_not_one_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, usage_error
) -> None:
    monkeypatch.setenv("GRPCTEST_TLS", "yes")  # Go's ParseBool rejects it too
    assert usage_error(cli.parse_args, []) == (
        "grpctest-client: error: GRPCTEST_TLS (for --tls): want one of "
        '0 1 F FALSE False T TRUE True f false t true, got "yes"'
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--count", "x"], {}, '--count: want a whole number, got "x"'),
        ([], {"GRPCTEST_COUNT": "x"}, 'GRPCTEST_COUNT (for --count): want a whole number, got "x"'),
        (["--timeout", "5 s"], {}, '--timeout: want seconds (like 5, 0.5 or 500ms), got "5 s"'),
        (["--mode", "bidi"], {}, '--mode: want one of unary, server-stream, chat, got "bidi"'),
        ([], {"GRPCTEST_OUTPUT": "yaml"},
         'GRPCTEST_OUTPUT (for --output): want one of text, json, got "yaml"'),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_names_the_flag_or_variable(
    usage_error, argv: list[str], env: dict, message: str
) -> None:
    assert usage_error(cli.parse_args, argv, env) == f"grpctest-client: error: {message}"


def test_seconds_take_a_unit_as_in_go(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parse_args(["--timeout", "500ms", "--interval", "0.25"])
    assert (args.timeout, args.interval) == (0.5, 0.25)
    monkeypatch.setenv("GRPCTEST_TIMEOUT", "2s")
    monkeypatch.setenv("GRPCTEST_INTERVAL", "10ms")
    assert (cli.parse_args([]).timeout, cli.parse_args([]).interval) == (2.0, 0.01)


def test_help_names_every_variable_and_default(help_text) -> None:
    text = help_text(cli.parse_args)
    assert all(f"env {s.variable}, default: " in text for s in cli.SETTINGS.settings)
    assert "(env GRPCTEST_TIMEOUT, default: 5)" in text


def test_summary_lists_calls_per_replica(capsys) -> None:
    cli.print_summary("t:1", collections.Counter({"b": 2, "a": 1}))
    assert capsys.readouterr().out.splitlines() == [
        "summary: 3 calls through t:1, 2 replicas answered",
        "  a: 1 calls",
        "  b: 2 calls",
    ]


def test_unreachable_target_exits_1_with_the_status(capsys) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    assert cli.main(["--target", "127.0.0.1:1", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE: ")
    assert "Traceback" not in err


def test_modes_and_their_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parse_args(["--mode", "server-stream", "--count", "100", "--interval", "0.5"])
    assert (args.mode, args.count, args.interval) == ("server-stream", 100, 0.5)
    monkeypatch.setenv("GRPCTEST_MODE", "chat")
    assert cli.parse_args([]).mode == "chat"


def test_resume_attempts_flag_and_its_environment_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.parse_args([]).resume_attempts == 5
    monkeypatch.setenv("GRPCTEST_RESUME_ATTEMPTS", "0")
    assert cli.parse_args([]).resume_attempts == 0
    assert cli.parse_args(["--resume-attempts", "2"]).resume_attempts == 2


@pytest.mark.parametrize(
    "argv",
    [["--mode", "bidi"], ["--interval", "-1"], ["--cert", "c.crt"], ["--resume-attempts", "-1"]],
)
def test_bad_mode_interval_or_lone_cert_is_a_usage_error(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_json_output_is_one_object_per_reply_and_a_summary(capsys) -> None:
    args = cli.parse_args(["--output", "json", "--count", "2"])
    reply = MessageResponse(message="m", received=True, replica="r", sequence=2)
    print(cli.reply_line(args, 2, reply))
    cli.print_json_summary("t:1", collections.Counter({"r": 2}))
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"n": 2, "replica": "r", "message": "m", "received": True, "sequence": 2},
        {"summary": {"replies": 2, "target": "t:1", "per_replica": {"r": 2}}},
    ]


def test_json_output_writes_non_ascii_and_html_characters_as_they_are(capsys) -> None:
    # The same bytes as the Go client (go-client/resume_test.go TestJSONOutputIsUnescaped).
    args = cli.parse_args(["--output", "json"])
    print(cli.reply_line(args, 1, MessageResponse(message="é<>&", replica="r")))
    cli.print_json_summary("é<>&", collections.Counter({"r": 1}))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '{"n":1,"replica":"r","message":"é<>&","received":false,"sequence":0}'
    assert out[1].startswith('{"summary":{"replies":1,"target":"é<>&",')


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("text", "resumed after 558 on replica-3"),
        ("json", '{"resumed":{"after":558,"replica":"replica-3"}}'),  # the Go client's bytes
    ],
)
def test_a_resume_is_one_line_on_stderr(capsys, output: str, line: str) -> None:
    cli.report_resumes(output)(558, "replica-3")
    assert capsys.readouterr() == ("", line + "\n")
