"""The repository's boundaries: which Python package may import which (the product never
the benchmark, the code generators or the test harness; the benchmark never the harness),
every package declares what it imports, and the Go workspace (go.work) holds every Go
module of the product with the same dependency versions each module builds with alone."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from grpctest_devtools.repo import REPO

# Each Python project of the workspace: its folder, and the workspace packages it may import.
PRODUCT = {"grpctest", "grpctest_common", "grpctest_server", "grpctest_client", "grpctest_devtools"}
PROJECTS = {
    "proto/python": set(),
    "py-common": set(),
    "py-server": {"grpctest", "grpctest_common"},
    "py-client": {"grpctest", "grpctest_common"},
    "devtools": PRODUCT,
    "tools/codegen": set(),
    "bench": PRODUCT,
    "tests/harness": PRODUCT | {"grpctest_bench"},
}


def project(folder: str) -> dict:
    return tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def modules_of(folder: str) -> list[str]:
    """The packages a project installs (grpctest-common: grpctest_common; grpctest-proto:
    grpctest and buf.validate)."""
    settings = tomllib.loads((REPO / folder / "pyproject.toml").read_text())
    backend = settings.get("tool", {}).get("uv", {}).get("build-backend", {})
    names = backend.get("module-name") or project(folder)["name"].replace("-", "_")
    return [names] if isinstance(names, str) else names


WORKSPACE = {
    module.split(".")[0]: normalized(project(folder)["name"])
    for folder in PROJECTS
    for module in modules_of(folder)
}


def imports(folder: str) -> set[str]:
    """Every module the project's own packages import (its tests excluded), lazily or not."""
    found = set()
    paths = [
        p for m in modules_of(folder) for p in (REPO / folder / m.replace(".", "/")).rglob("*.py")
    ]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] not in sys.stdlib_module_names}


@cache
def files_of(distribution: str) -> frozenset[str]:
    return frozenset(str(f) for f in importlib.metadata.distribution(distribution).files or [])


def distributions(module: str) -> set[str]:
    """The installed distributions that provide `module`: of those that share its top-level
    package (google: protobuf and googleapis-common-protos), the ones that hold it."""
    top = module.split(".", maxsplit=1)[0]
    if top in WORKSPACE:
        return {WORKSPACE[top]}
    candidates = importlib.metadata.packages_distributions().get(top, [])
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        holding = {
            d for d in candidates
            if any(f.startswith((f"{prefix}/", f"{prefix}.py")) for f in files_of(d))
        }  # fmt: skip
        if holding:
            return {normalized(d) for d in holding}
    return {normalized(d) for d in candidates}


@pytest.mark.parametrize("folder", PROJECTS)
def test_a_package_imports_only_the_workspace_packages_below_it(folder: str) -> None:
    own = {module.split(".")[0] for module in modules_of(folder)}
    used = {name.split(".")[0] for name in imports(folder)} & set(WORKSPACE) - own
    assert used <= PROJECTS[folder], f"{own} imports {sorted(used - PROJECTS[folder])}"


def test_nothing_in_the_product_or_the_benchmark_imports_the_test_harness() -> None:
    for folder in ("proto/python", "py-common", "py-server", "py-client", "devtools", "bench"):
        assert not {n for n in imports(folder) if n.startswith("grpctest_harness")}, folder


@pytest.mark.parametrize("folder", PROJECTS)
def test_a_package_declares_every_distribution_it_imports(folder: str) -> None:
    extras = project(folder).get("optional-dependencies", {}).values()
    declared = {
        normalized(re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0])
        for requirement in [*project(folder)["dependencies"], *(r for e in extras for r in e)]
    }
    own = normalized(project(folder)["name"])
    undeclared = {
        name: sorted(found)
        for name in sorted(imports(folder))
        if not (found := distributions(name)) & (declared | {own})
    }
    assert not undeclared, f"{own} imports what its pyproject.toml does not declare: {undeclared}"


def go_work_modules() -> list[str]:
    listed = json.loads(run_go("work", "edit", "-json"))
    return sorted(use["DiskPath"].removeprefix("./") for use in listed["Use"])


def run_go(*args: str, cwd: Path = REPO, **env: str) -> str:
    result = subprocess.run(
        ["go", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


# Modules of their own that pin large programs for the tests and `make observe`: outside
# the workspace, their dependencies would otherwise move the product's.
OUTSIDE_THE_WORKSPACE = {"tools/jaeger", "tools/kubernetes"}


def test_go_work_lists_every_go_module_but_the_pinned_programs() -> None:
    modules = {
        str(path.parent.relative_to(REPO))
        for path in REPO.rglob("go.mod")
        if not {"node_modules", ".venv"} & set(path.parts)
    }
    assert set(go_work_modules()) == modules - OUTSIDE_THE_WORKSPACE


def built_with(packages: str, cwd: Path, **env: str) -> dict[str, str]:
    """Module path -> version of every module that `packages` (and their tests) compile
    from, but the repository's own (workspace modules, or replaced by a path)."""
    template = (
        "{{with .Module}}{{if and .Version (not .Replace)}}{{.Path}} {{.Version}}{{end}}{{end}}"
    )
    lines = run_go("list", "-deps", "-test", "-f", template, packages, cwd=cwd, **env)
    return dict(line.split(" ", 1) for line in set(lines.splitlines()) if line)


def test_each_go_module_builds_alone_with_the_workspaces_versions() -> None:
    """A module's Dockerfile builds it alone (no go.work): the versions it compiles with
    then must be the ones its tests and the lint saw in the workspace (else: `go work
    sync`)."""
    for module in go_work_modules():
        if not list((REPO / module).rglob("*.go")):
            continue  # tools/codegen: tool directives only
        alone = built_with("./...", REPO / module, GOWORK="off")
        in_workspace = built_with(f"./{module}/...", REPO)
        assert alone == in_workspace, f"{module}: run `go work sync`"
