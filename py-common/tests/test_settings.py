"""One boolean rule for every program: Go's strconv.ParseBool."""

from __future__ import annotations

import argparse

import pytest

from grpctest_common import settings

# Exactly what Go's strconv.ParseBool accepts (go-client's tests check the Go side).
GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


@pytest.mark.parametrize("text", GO_TRUE)
def test_true_spellings(text: str) -> None:
    assert settings.parse_bool(text) is True


@pytest.mark.parametrize("text", GO_FALSE)
def test_false_spellings(text: str) -> None:
    assert settings.parse_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "on", "no", "off", "tRuE", " 1", "2"])
def test_anything_else_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="want one of"):
        settings.parse_bool(text)


def test_empty_environment_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRPCTEST_X", "")
    assert settings.env("GRPCTEST_X", "d") == "d"
    assert settings.env_bool(argparse.ArgumentParser(), "GRPCTEST_X", True) is True
    monkeypatch.setenv("GRPCTEST_X", "false")
    assert settings.env_bool(argparse.ArgumentParser(), "GRPCTEST_X", True) is False


def test_a_choice_outside_its_set_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRPCTEST_X", "fast")
    with pytest.raises(SystemExit) as exit_:
        settings.env_choice(argparse.ArgumentParser(), "GRPCTEST_X", "a", ("a", "b"))
    assert exit_.value.code == 2
    assert "GRPCTEST_X: want one of a, b, got 'fast'" in capsys.readouterr().err
    monkeypatch.setenv("GRPCTEST_X", "b")
    assert settings.env_choice(argparse.ArgumentParser(), "GRPCTEST_X", "a", ("a", "b")) == "b"
