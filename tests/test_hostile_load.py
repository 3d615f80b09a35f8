"""Hostile load: one client attacks the local stack as an attacker on the same machine
would, while honest callers call through both of Envoy's listeners.

Each attack (grpctest_harness.attacks: idle connections, slowloris, rapid reset, a
CONTINUATION flood, streams whose replies are never read) runs in a process of its own
against the local stack (3 py-server and 1 go-server replicas behind Envoy), with honest
unary callers and streams on :8080 and :8443 (grpctest_harness.hostile_load). The
promises (docs/failure-behaviour.md, "Under hostile load"): no honest call fails, their
p99 stays under 250 ms, a new client gets in, every replica stays healthy, memory stays
under its caps and comes back down, and the defence meant for the attack is the one that
acted (its Envoy counter moved). The sizes here are smaller than the issue's so that the
whole file takes a minute or two; `make hostile-load` runs the issue's sizes and ten
times them and prints the table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpctest_devtools.localstack import LocalStack
from grpctest_harness.attacks import Endpoint
from grpctest_harness.hostile_load import ATTACKS, Trial, row, run_trial

# attack -> its size in this suite (what the size counts: hostile_load.ATTACKS).
SIZES = {
    "idle-connections": 2000,
    "slowloris": 100,
    "rapid-reset": 2300,
    "continuation-flood": 2,
    "unread-streams": 10,
}
# Minutes of load: with the heavy tests (make test-heavy), in CI.
pytestmark = pytest.mark.heavy
HONEST_P99_MS = 250
# Resident memory (MB) no process may reach: Envoy's (its heap cap, 256 MiB, and its
# binary; envoy/envoy.yaml) and the replicas' (their Kubernetes limits).
MEMORY_CAPS_MB = {"envoy": 320, "replica": 256, "go": 128}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local run's topology: 3 py-server replicas and 1 go-server replica."""
    with LocalStack.on_free_ports(
        go_replicas=1,
        log_dir=tmp_path_factory.mktemp("hostile"),
        server_args=["--log-level", "WARNING"],
    ) as running:
        yield running


@pytest.mark.parametrize("attack", SIZES)
def test_one_attacker_does_not_starve_honest_callers(stack, attack: str, figures) -> None:
    trial = run_trial(stack, ATTACKS[attack], SIZES[attack])
    figures[f"hostile load, {attack}"] = row(trial)
    honest = trial.honest
    assert honest.unary_failures == {}, row(trial)
    assert honest.stream_failures == [], row(trial)
    assert honest.p99_ms < HONEST_P99_MS, row(trial)
    assert isinstance(honest.new_client, float), f"a new client got {honest.new_client}"
    assert trial.healthy_min == trial.replicas, row(trial)
    assert trial.counters["health checks failed"] == 0, row(trial)
    assert trial.counters["replicas ejected (outlier detection)"] == 0, row(trial)
    _assert_memory_bounded(trial)
    for defence in ATTACKS[attack].defences:
        assert trial.counters[defence] > 0, f"{defence}: not counted; {row(trial)}"


def _assert_memory_bounded(trial: Trial) -> None:
    """Under each cap at its peak, and back near where it was once the attack is over."""
    for name, memory in trial.memory.items():
        cap = next((mb for kind, mb in MEMORY_CAPS_MB.items() if name.startswith(kind)), None)
        if cap is not None:
            assert memory.peak < cap, f"{name} reached {memory.peak} MB (cap {cap})"
    heap = trial.memory["envoy heap"]
    assert heap.final <= heap.idle * 1.5 + 8, f"Envoy's heap stayed at {heap}"


def test_the_attacks_refuse_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Endpoint("192.0.2.1", 8080)
