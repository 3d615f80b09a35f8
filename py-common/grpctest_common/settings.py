"""Settings: declared once per program as a table, the command line built from it.

Each row (a `Setting`) names a flag, its environment variable, its kind, its default and
its help. A flag `--name` falls back to the variable `GRPCTEST_NAME` and then to a
default that suits the local run; an empty variable counts as unset. The Go programs
follow the same rules (go-common's settings package, docs/settings.md):

    SETTINGS = Table(
        Setting("--count", WHOLE_NUMBER, 1, "calls to make"),
        Setting("--timeout", SECONDS, 5.0, "deadline of each call"),
    )
    parser = SETTINGS.parser("grpctest-client", "Calls grpctest.Grpctest.")
    args = SETTINGS.parse(parser, argv)  # args.count, args.timeout

A bad value is a usage error (exit 2) that says what was wanted and what was given,
naming the flag or the variable it came from:

    grpctest-client: error: --count: want a whole number, got "abc"
    grpctest-client: error: GRPCTEST_COUNT (for --count): want a whole number, got "abc"

Kinds: a whole number (`int()`), a number (a decimal), seconds (`5`, `0.5`, or with a
unit: `500ms`, `2s`, `1m`, `1.5h`), a boolean (Go's `strconv.ParseBool` set:
`1 t T TRUE true True` / `0 f F FALSE false False`, anything else an error rather than a
silent false), one of a declared list (`choice`), text and paths. Range checks (a port's
0..65535) stay with each program.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# Seconds per unit of a duration (the units of Go's time.ParseDuration that the spec keeps).
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# One or more "number unit" parts, as Go writes a duration ("1m30s", "500ms").
DURATION = re.compile(r"([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ms|s|m|h))+)")
DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ms|s|m|h)")
# Go's %q escapes for the characters that have a short one.
SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
SHORT_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def env(name: str, default: str) -> str:
    """The environment variable `name`, or `default` when it is unset or empty."""
    return os.environ.get(name) or default


def parse_bool(text: str) -> bool:
    """Reads a boolean as Go's strconv.ParseBool does; ValueError for anything else."""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"want {BOOLEAN.wanted}, got {quote(text)}")


def parse_seconds(text: str) -> float:
    """Seconds from a plain number (`5`, `0.5`) or a duration (`500ms`, `2s`, `1m30s`)."""
    try:
        return float(text)
    except ValueError:
        pass
    match = DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"want {SECONDS.wanted}, got {quote(text)}")
    sign = -1.0 if match[1] == "-" else 1.0
    return sign * sum(float(n) * UNITS[unit] for n, unit in DURATION_PART.findall(match[2]))


def show_seconds(seconds: float) -> str:
    """How a message shows a duration: in seconds, "0.5s", "90s" (as the Go programs show
    theirs, go-common's settings.ShowSeconds)."""
    return f"{seconds:g}s"


def quote(text: str) -> str:
    """`text` in double quotes, escaped as Go's %q writes it, so that both languages
    print a bad value alike."""
    return '"' + "".join(_escaped(char) for char in text) + '"'


def _escaped(char: str) -> str:
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x80
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


@dataclass(frozen=True)
class Kind:
    """What a setting takes: `wanted` is how an error names it ("a whole number"),
    `read` turns the text into the value (ValueError if it is not one)."""

    wanted: str
    read: Callable[[str], Any]


WHOLE_NUMBER = Kind("a whole number", int)
NUMBER = Kind("a number", float)
SECONDS = Kind("seconds (like 5, 0.5 or 500ms)", parse_seconds)
BOOLEAN = Kind(f"one of {' '.join(sorted(TRUE | FALSE))}", parse_bool)
TEXT = Kind("text", str)
# An empty path (`--ca ""`) is no path, as an empty variable is unset.
PATH = Kind("a path", lambda text: Path(text) if text else None)


def choice(options: Sequence[str], normalize: Callable[[str], str] = str) -> Kind:
    """One of `options` (after `normalize`, e.g. str.upper for log levels)."""

    def read(text: str) -> str:
        value = normalize(text)
        if value not in options:
            raise ValueError(text)
        return value

    return Kind(f"one of {', '.join(options)}", read)


# A Setting's `env` when the variable's name follows from the flag's (--count:
# GRPCTEST_COUNT); None instead means the setting has no variable.
DERIVED = "derived"


@dataclass(frozen=True)
class Setting:
    """One row of a program's table. `default` is the value itself (or a function that
    gives it, for a default read at parse time, e.g. the hostname); `shown` is how
    --help names the default where its value does not say it ("the hostname")."""

    flag: str
    kind: Kind
    default: Any
    help: str
    env: str | None = DERIVED
    shown: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def variable(self) -> str | None:
        """The environment variable this setting falls back to, if any."""
        if self.env == DERIVED:
            return "GRPCTEST_" + self.dest.upper()
        return self.env

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    @property
    def default_text(self) -> str:
        """The default as --help (and docs/settings.md) writes it: `shown`, on/off, or
        the value."""
        if self.shown is not None:
            return self.shown
        if self.kind is BOOLEAN:
            return "on" if self.default else "off"
        return str(self.default_value())

    def help_text(self) -> str:
        """The help, then where the value comes from when the flag is not given."""
        source = f"env {self.variable}, " if self.variable else ""
        return f"{self.help} ({source}default: {self.default_text})".replace("%", "%%")


class Table:
    """A program's settings: builds its parser and reads its values."""

    def __init__(self, *settings: Setting) -> None:
        self.settings = settings

    def parser(self, prog: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
        """An argparse parser with one option per setting (a boolean also as --no-X).
        Every option's default is None, so that `parse` can tell a flag not given."""
        parser = argparse.ArgumentParser(prog=prog, description=description, **kwargs)
        for setting in self.settings:
            if setting.kind is BOOLEAN:
                action: Any = argparse.BooleanOptionalAction
                parser.add_argument(setting.flag, action=action, help=setting.help_text())
            else:
                parser.add_argument(setting.flag, help=setting.help_text())
        return parser

    def parse(
        self, parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
    ) -> argparse.Namespace:
        """The command line's values: each setting from its flag, else its environment
        variable, else its default; a usage error (exit 2) for a value of the wrong kind."""
        args = parser.parse_args(argv)
        for setting in self.settings:
            setattr(args, setting.dest, _value(parser, setting, getattr(args, setting.dest)))
        return args


def _value(parser: argparse.ArgumentParser, setting: Setting, given: str | bool | None) -> Any:
    """One setting's value: the flag's (`given`), the variable's, or the default."""
    if isinstance(given, bool):  # --x / --no-x
        return given
    if given is not None:
        return _read(parser, setting, given, setting.flag)
    text = os.environ.get(setting.variable) if setting.variable else None
    if text:
        return _read(parser, setting, text, f"{setting.variable} (for {setting.flag})")
    return setting.default_value()


def _read(parser: argparse.ArgumentParser, setting: Setting, text: str, source: str) -> Any:
    try:
        return setting.kind.read(text)
    except ValueError:
        parser.error(f"{source}: want {setting.kind.wanted}, got {quote(text)}")


def read_file(parser: argparse.ArgumentParser, flag: str, path: str | Path | None) -> bytes | None:
    """The bytes of the file a setting names (None for no file); a usage error (exit 2)
    if it cannot be read, in the Go programs' words (the system's reason in lower case:
    "cannot read --ca PATH: no such file or directory")."""
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        parser.error(f"cannot read {flag} {path}: {(err.strerror or str(err)).lower()}")
