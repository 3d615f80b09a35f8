"""Settings: every setting is a flag whose default comes from the environment.

A flag `--name` falls back to the variable `GRPCTEST_NAME` and then to a default that
suits the local run. An empty variable counts as unset. Booleans follow one rule in the
Python and the Go programs alike, Go's `strconv.ParseBool`: `1 t T TRUE true True` are
true, `0 f F FALSE false False` are false, and anything else is a usage error rather
than a silent false.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection

TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def env(name: str, default: str) -> str:
    """The environment variable `name`, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def parse_bool(text: str) -> bool:
    """Reads a boolean as Go's strconv.ParseBool does; ValueError for anything else."""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"want one of {' '.join(sorted(TRUE | FALSE))}, got {text!r}")


def env_bool(parser: argparse.ArgumentParser, name: str, default: bool) -> bool:
    """The boolean in the environment variable `name`; a usage error (exit 2) if it is
    not one."""
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return parse_bool(value)
    except ValueError as err:
        parser.error(f"{name}: {err}")


def env_choice(
    parser: argparse.ArgumentParser,
    name: str,
    default: str,
    choices: Collection[str],
    convert: Callable[[str], str] = str,
) -> str:
    """The environment variable `name` (through `convert`), or `default`; a usage error
    (exit 2) if it is not one of `choices` (argparse checks a flag's choices, not its
    default)."""
    value = convert(env(name, default))
    if value not in choices:
        parser.error(f"{name}: want one of {', '.join(choices)}, got {value!r}")
    return value
