"""Removes what a test cluster may leave on the machine, and names what is still there.

Run after its processes have stopped. Everything is found by where it belongs (a
path under the cluster's folder, its bridge, its cgroup root, the marked iptables
rules), never by a program's name. kube-proxy's and the kubelet's iptables chains
(KUBE-*) are the cluster's because the cluster refuses to start where any exist
(kubernetes_chains: another Kubernetes' kube-proxy would share those chains).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from grpctest_devtools.waiting import wait_until

log = logging.getLogger(__name__)

CGROUPS = Path("/sys/fs/cgroup")
TABLES = [(family, table) for family in ("iptables", "ip6tables")
          for table in ("nat", "filter", "mangle")]  # fmt: skip
# Marks the iptables rules the harness adds itself (kube-proxy's are in KUBE-* chains).
RULE_COMMENT = "grpctest-cluster"
# The match that marks a rule so (iptables arguments).
RULE_MARK = ("-m", "comment", "--comment", RULE_COMMENT)


def clean(folder: Path, bridge: str, cgroup_root: str) -> list[str]:
    """Removes every leftover of the cluster whose state is in `folder`, whose pods are
    on `bridge` and in `cgroup_root`; returns what could not be removed."""
    _kill_processes(folder)
    unmount(folder)
    _remove_iptables_chains()
    remove_cgroups(cgroup_root)
    for link in _links(bridge):
        subprocess.run(["ip", "link", "delete", link], capture_output=True, timeout=30)
    delete_bridge(bridge)
    shutil.rmtree(folder, ignore_errors=True)
    return leftovers(folder, bridge, cgroup_root)


def delete_bridge(bridge: str) -> None:
    subprocess.run(["ip", "link", "delete", bridge], capture_output=True, timeout=30)


def leftovers(folder: Path, bridge: str, cgroup_root: str) -> list[str]:
    """Everything of the cluster still on the machine, by kind."""
    found = [f"process {pid}" for pid in _processes(folder)]
    found += [f"mount {m}" for m in _mounts(folder)]
    found += [f"interface {link}" for link in [*_links(bridge), *_bridge(bridge)]]
    found += [f"iptables chain {c}" for c in _iptables_chains()]
    found += [f"cgroup {c}" for c in _cgroups(cgroup_root)]
    if folder.exists():
        found.append(f"folder {folder}")
    return found


def _processes(folder: Path) -> list[int]:
    """Processes whose command line names the cluster's folder (containerd's shims name
    its socket; the containers' processes are in its cgroups, see remove_cgroups)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if str(folder).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _kill_processes(folder: Path) -> None:
    for pid in _processes(folder):
        log.warning("killing leftover process %s of the cluster", pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    try:
        wait_until(lambda: not _processes(folder), 30, "the cluster's processes to exit", 0.2)
    except TimeoutError as err:  # (the teardown goes on; leftovers() names them)
        log.warning("%s", err)


def _mounts(folder: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(folder) or point.startswith(f"{folder}/"):
            points.append(point)
    return points


def unmount(folder: Path) -> None:
    for point in sorted(_mounts(folder), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)


def _links(bridge: str) -> list[str]:
    """The interfaces attached to the bridge (the pods' veths)."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                         capture_output=True, text=True, timeout=30).stdout  # fmt: skip
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def _bridge(bridge: str) -> list[str]:
    shown = subprocess.run(["ip", "link", "show", bridge], capture_output=True, timeout=30)
    return [bridge] if shown.returncode == 0 else []


def kubernetes_chains() -> list[str]:
    """The KUBE-* chains on this machine (kube-proxy's and the kubelet's, IPv4 and IPv6)."""
    return [
        f"{family} {table}/{line.split()[1]}"
        for family, table in TABLES
        for line in _iptables(family, table, "-S").splitlines()
        if line.startswith("-N KUBE-")
    ]


def _iptables_chains() -> list[str]:
    """The cluster's chains (KUBE-*: see the module's docstring) and the rules marked
    as ours."""
    marked = [
        f"{family} {table}: {line}"
        for family, table in TABLES
        for line in _iptables(family, table, "-S").splitlines()
        if RULE_COMMENT in line
    ]
    return kubernetes_chains() + marked


def _remove_iptables_chains() -> None:
    """Rules jumping to KUBE-* chains and those marked ours first, then the chains."""
    for family, table in TABLES:
        rules = _iptables(family, table, "-S").splitlines()
        chains = [line.split()[1] for line in rules if line.startswith("-N KUBE-")]
        for line in rules:
            words = shlex.split(line)
            ours = "-j KUBE-" in line or RULE_COMMENT in line
            if line.startswith("-A ") and ours and words[1] not in chains:
                _iptables(family, table, "-D", *words[1:])
        for flag in ("-F", "-X"):
            for chain in chains:
                _iptables(family, table, flag, chain)


def _iptables(family: str, table: str, *args: str) -> str:
    return subprocess.run([family, "-t", table, *args], capture_output=True, text=True,
                          timeout=30).stdout  # fmt: skip


def _cgroups(root: str) -> list[str]:
    return [str(c / root) for c in CGROUPS.iterdir() if (c / root).is_dir()]


def remove_cgroups(root: str) -> None:
    """Kills what still runs in the pods' cgroups, then removes them, deepest first."""
    for top in map(Path, _cgroups(root)):
        for procs in top.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                log.warning("killing leftover container process %s", pid)
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    continue
    for top in map(Path, _cgroups(root)):
        for folder in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            _rmdir(folder)
        _rmdir(top)


def _rmdir(folder: Path) -> None:
    try:
        wait_until(lambda: _try_rmdir(folder), 10, f"{folder} to be removable", 0.2)
    except TimeoutError as err:
        log.warning("%s", err)


def _try_rmdir(folder: Path) -> bool:
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
