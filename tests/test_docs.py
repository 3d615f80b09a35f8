"""The documentation's commands, run: README.md's and docs/'s console blocks against a
local stack, each output checked against the shape of the sample the page shows.

Which commands run (a rule, no markers in the pages): every command of a ```console
block that is one of the clients, grpcurl, buf, grpc-health-probe or curl and talks only
to the stack's ports (8080, 8443, Envoy's admin 9901), in whatever block it stands (also
one that starts the stack with `make demo`, `docker compose` or `kubectl`: the stack
answers the same there). Commands of `make`, `docker`, `kubectl` or `git` belong to other
tests (compose, swarm, Kubernetes, the local run's own), and so does changing-the-contract.md's
block, which calls a contract the page has just changed (tests/test_changing_the_contract.py
makes that change in a copy of the repository and runs it there).

How a sample is read (stdout, or stderr where a program reports there): no output
shown: the command must succeed; `error: STATUS: …`: it must fail with exactly that line
on stderr; JSON: the same values, numbers as any number; anything else: line by line,
every number matched as a number. In both, a line of `...` matches any lines (values),
and `... (the same, ...)` stands for the sample of the command before. A replica's name
matches any replica's (`replica-N`, `go-N`: the stack is `make run`'s, 3 py-server
replicas and one go-server). The ports in commands and samples become the stack's.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.repo import REPO

from .conformance.calls import json_values

# Pages whose blocks another test runs, where they hold (see above).
RUN_ELSEWHERE = {"changing-the-contract.md"}
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROGRAMS = {"grpctest-client", "go-client", "grpcurl", "buf", "grpc-health-probe", "curl"}
STACK_PORTS = {"8080", "8443", "9901"}
GAP = {"...", "…"}
# A sample that is the previous command's: "... (the same, from Go)".
SAME = re.compile(r"^\s*(?:\.\.\.|…) \(the same\b")
# A replica's name as the replies give it: replica-N (py-server), go-N (go-server).
REPLICA = re.compile(r"(?:replica|go)-\d+")
ADDRESS = r"(?:localhost|127\.0\.0\.1):(\d+)"


@dataclass(frozen=True)
class Example:
    """One command of a page and the output the page shows for it."""

    page: str
    command: str
    sample: list[str]

    def __str__(self) -> str:
        return f"{self.page}: {self.command[:60]}"


def console_blocks(text: str) -> list[list[str]]:
    """The lines of each ```console block (one inside a list item is dedented)."""
    blocks = re.findall(r"^( *)```console\n(.*?)^ *```", text, re.S | re.M)
    return [[line.removeprefix(indent) for line in body.splitlines()] for indent, body in blocks]


def examples(page: Path, lines: list[str]) -> list[Example]:
    """The block's commands (a `\\` continues one onto the next line), each with its
    sample output; a `# comment` after a command is the reader's, not the shell's."""
    found: list[Example] = []
    command = None
    for line in lines:
        if command is not None and command.endswith("\\"):
            command = command[:-1] + " " + line.strip()
            found[-1] = Example(found[-1].page, command, [])
        elif line.startswith("$ "):
            command = re.sub(r"\s+#\s.*$", "", line[2:]).strip()
            found.append(Example(page.name, command, []))
        elif found:
            found[-1].sample.append(line)
    return found


def program(command: str) -> str:
    return Path(command.split(maxsplit=1)[0]).name


def runnable(example: Example) -> bool:
    """A command of one of PROGRAMS, on the stack's ports, written out whole (one with an
    ellipsis is a shortened echo of another, as in `make demo`'s sample)."""
    ports = set(re.findall(ADDRESS, example.command))
    whole = not GAP & set(example.command.split())
    return program(example.command) in PROGRAMS and ports <= STACK_PORTS and whole


def with_references(block: list[Example]) -> list[Example]:
    """The block, a sample `... (the same, ...)` replaced by the command before's."""
    resolved: list[Example] = []
    for example in block:
        shown = [line for line in example.sample if line.strip()]
        same = bool(resolved and shown and SAME.match(shown[0]))
        sample = resolved[-1].sample if same else example.sample
        resolved.append(Example(example.page, example.command, sample))
    return resolved


def all_examples() -> list[Example]:
    return [
        example
        for page in PAGES
        if page.name not in RUN_ELSEWHERE
        for lines in console_blocks(page.read_text(encoding="utf-8"))
        for example in with_references(examples(page, lines))
        if runnable(example)
    ]


EXAMPLES = all_examples()


def test_the_docs_have_runnable_blocks() -> None:
    # The rule above finds the blocks; if it found none it would test nothing.
    assert len(EXAMPLES) >= 20, [str(e) for e in EXAMPLES]
    assert {e.page for e in EXAMPLES} >= {
        "README.md", "standard-tools.md", "streaming.md", "browser-and-rest.md", "tls-and-auth.md",
    }  # fmt: skip


@pytest.fixture(scope="module")
def docs_stack(tmp_path_factory: pytest.TempPathFactory):
    # As `make run` starts it: 3 py-server replicas and one go-server.
    logs = tmp_path_factory.mktemp("docs-logs")
    with LocalStack.on_free_ports(go_replicas=1, log_dir=logs) as stack:
        yield stack


def on_stack(text: str, stack: LocalStack) -> str:
    """The documented ports (Envoy's, its admin's, the first replica's) made the stack's."""
    ports = {"8080": stack.envoy_port, "8443": stack.tls_port, "9901": stack.admin_port}
    ports["50051"] = stack.ports[0]
    return re.sub(
        r"(localhost|127\.0\.0\.1):(8080|8443|9901|50051)\b",
        lambda m: f"{m[1]}:{ports[m[2]]}",
        text,
    )


def line_pattern(line: str) -> str:
    """A sample line as a regex: every replica's name any replica's, every number any
    number, a trailing … anything."""
    text = REPLICA.sub("\0", line.rstrip().removesuffix("…").removesuffix("..."))
    parts = re.split(r"(\d+|\0)", text)
    pattern = "".join(
        r"\d+" if part.isdigit() else REPLICA.pattern if part == "\0" else re.escape(part)
        for part in parts
    )
    return pattern + (".*" if line.rstrip().endswith(("…", "...")) else "")


def matches_lines(sample: list[str], output: str) -> bool:
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line.strip() in GAP else line_pattern(line) + r"\n" for line in sample
    )
    return re.fullmatch(pattern, output if output.endswith("\n") else output + "\n") is not None


def shape(value: object) -> object:
    """A JSON value as a sample shows it: any number for a number, any replica's name
    for one (also as a key: a tally per replica has as many entries, each any name)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "<number>"
    if isinstance(value, str):
        return REPLICA.sub("replica-N", value)
    if isinstance(value, list):
        return [shape(v) for v in value]
    assert isinstance(value, dict), value
    return sorted((REPLICA.sub("replica-N", k), repr(shape(v))) for k, v in value.items())


def matches_json(sample: list[str], output: str) -> bool:
    """The output's JSON values have the sample's shapes, in order; a `...` line of the
    sample stands for any values."""
    pattern: list[object] = []
    for gap, lines in itertools.groupby(sample, key=lambda line: line.strip() in GAP):
        pattern += [GAP] if gap else [shape(v) for v in json_values("\n".join(lines))]
    return fits(pattern, [shape(v) for v in json_values(output)])


def fits(pattern: list[object], values: list[object]) -> bool:
    if not pattern:
        return not values
    if pattern[0] is GAP:
        return any(fits(pattern[1:], values[at:]) for at in range(len(values) + 1))
    return bool(values) and values[0] == pattern[0] and fits(pattern[1:], values[1:])


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_documented_command_works_as_shown(docs_stack: LocalStack, example: Example) -> None:
    # As the README says: the venv's and bin/'s programs on PATH; where no --target is
    # given, the clients' environment fallback names the stack.
    path = f"{Path(sys.executable).parent}:{REPO / 'bin'}:{os.environ['PATH']}"
    target = on_stack("localhost:8080", docs_stack)  # the clients' default, on the stack
    env = {**os.environ, "PATH": path, "GRPCTEST_TARGET": target}
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", on_stack(example.command, docs_stack)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    sample = [on_stack(line, docs_stack) for line in example.sample if line.strip()]
    if sample and sample[0].startswith("error: "):
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.splitlines()[:1] == sample[:1]
        return
    assert result.returncode == 0, result.stderr
    # curl -i: HTTP's header lines end in CR LF; grpc-health-probe reports on stderr.
    output = (result.stdout or result.stderr).replace("\r\n", "\n")
    if sample and sample[0].lstrip().startswith("{"):
        assert matches_json(sample, output), output
    elif sample:
        assert matches_lines(sample, output), output


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_of_a_page_leads_to_a_file(page: Path) -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    local = [link.split("#")[0] for link in links if not link.startswith(("http", "#"))]
    assert [link for link in local if not (page.parent / link).exists()] == []
