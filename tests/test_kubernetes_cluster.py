"""deploy/kubernetes for real, on a single-node cluster built here from Kubernetes' own
sources (`make test-cluster` builds it; grpctest_harness.cluster runs it).

The manifests are applied as a user applies them (`make -s k8s | kubectl apply -f -`,
the client Jobs with `kubectl apply -k`); then the py-server pods must pass their
native gRPC probes, Envoy must see every pod (3 py-server, 1 go-server) through the
control plane (which watches the headless Services' EndpointSlices with a ServiceAccount
that may do nothing else), grpcurl must work through Envoy's Service and both client Jobs
three ways (through Envoy, proxyless over xDS, client-side over DNS); then, under load
from both clients (64 calls in flight each, split between Envoy's Service and proxyless
over xDS from the node), a pod is deleted, py-server is restarted and scaled to 5, a
container is killed inside its pod, and the go-server pod is deleted, with no call lost.
The cluster is
torn down completely afterwards (its teardown fails on anything left behind).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from grpctest_devtools.clients import (
    JSON_OUTPUT,
    CallPath,
    calls_per_replica,
    proxyless,
    run_client,
    through_envoy,
)
from grpctest_devtools.control_plane import write_bootstrap
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.ports import free_port, port_in_use
from grpctest_devtools.processes import DIE_WITH_PARENT
from grpctest_devtools.repo import REPO, command
from grpctest_devtools.waiting import wait_until
from grpctest_harness.cluster import Cluster
from grpctest_harness.cluster_images import build_images
from grpctest_harness.faults import CALLERS, CONNECTIONS, under_load
from grpctest_harness.load import Load, PythonLoad, assert_ran_through, path_loads

NS = "grpctest"
SERVERS = "deployment/py-server"
# The Deployments behind Envoy's one upstream cluster, and how many pods the Go one runs.
BACKENDS = ("py-server", "go-server")
GO_PODS = 1
ENVOY_ADMIN_PORT = 9901

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]


def _bin_dir() -> Path:
    folder = os.environ.get("GRPCTEST_CLUSTER_BIN")
    if not folder or not (Path(folder) / "kube-apiserver").exists():
        pytest.fail("GRPCTEST_CLUSTER_BIN does not name the built cluster: run `make test-cluster`")
    return Path(folder)


@pytest.fixture(scope="module")
def images_tar(tmp_path_factory: pytest.TempPathFactory, figures) -> Path:
    """The images the manifests run, saved from an engine of their own."""
    workdir = Path(tempfile.mkdtemp(prefix="gk8s-img-", dir="/tmp"))
    tar = tmp_path_factory.mktemp("cluster-images") / "images.tar"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "grpctest"
    start = time.monotonic()
    try:
        figures["k8s: base images"] = build_images(workdir, cache / "cluster-docker", tar)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures["k8s: seconds to build the images"] = round(time.monotonic() - start, 1)
    return tar


@pytest.fixture(scope="module")
def cluster(images_tar: Path, figures) -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="gk8s-", dir="/tmp"))
    start = time.monotonic()
    with Cluster(workdir, _bin_dir()) as running:
        running.load_images(images_tar)
        running.start_node()
        figures["k8s: seconds to boot the cluster (images imported, node Ready, DNS up)"] = round(
            time.monotonic() - start, 1
        )
        figures["k8s: boot seconds per step"] = running.boot_seconds
        yield running


def make(*args: str) -> str:
    result = subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply(cluster: Cluster, manifests: str) -> None:
    """`kubectl apply -f -` of these manifests."""
    result = subprocess.run(
        [cluster.bin / "kubectl", "--kubeconfig", cluster.kubeconfig, "apply", "-f", "-"],
        input=manifests, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def deployed(cluster: Cluster, figures) -> Cluster:
    """The README's commands: `make certs`, `make -s k8s | kubectl apply -f -`, wait."""
    start = time.monotonic()
    make("certs")
    apply(cluster, make("k8s"))
    cluster.kubectl("-n", NS, "wait", "--for=condition=Available", "deployment", "--all",
                    "--timeout=300s", timeout=330)  # fmt: skip
    try:
        wait_until(lambda: envoys_see(cluster, server_ips(cluster)), 60, "Envoy to see every pod")
    except TimeoutError as err:
        seen = [sorted(admin.healthy_hosts()) for admin in envoy_admins(cluster)]
        raise AssertionError(
            f"{err}: Envoys see {seen}, pods {sorted(server_ips(cluster))}"
        ) from err
    figures["k8s: seconds from apply to Available and in Envoy's rotation"] = round(
        time.monotonic() - start, 1
    )
    return cluster


def pods(cluster: Cluster, app: str) -> list[dict]:
    selector = f"app.kubernetes.io/name={app}"
    return cluster.kubectl_json("get", "pods", "-n", NS, "-l", selector)["items"]


def backend_pods(cluster: Cluster) -> list[dict]:
    """The pods of every Deployment behind Envoy (py-server and go-server)."""
    return [pod for app in BACKENDS for pod in pods(cluster, app)]


def names(cluster: Cluster) -> set[str]:
    """The backend pods' names (each reply names its pod)."""
    return {p["metadata"]["name"] for p in backend_pods(cluster)}


def ready(pod: dict) -> bool:
    conditions = pod["status"].get("conditions", [])
    deleting = "deletionTimestamp" in pod["metadata"]
    return not deleting and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def serving_pod(cluster: Cluster, app: str = "py-server") -> dict:
    """A ready pod of `app` (not one an earlier test's scale-down is still stopping)."""
    return next(p for p in pods(cluster, app) if ready(p))


def server_ips(cluster: Cluster) -> set[str]:
    """The ready backend pods' gRPC addresses, as Envoy's /clusters shows them."""
    return {f"{p['status']['podIP']}:50051" for p in backend_pods(cluster) if ready(p)}


def envoy_admins(cluster: Cluster) -> list[EnvoyAdmin]:
    """Each ready Envoy pod's admin API (the pod network is the node's own)."""
    return [EnvoyAdmin(ENVOY_ADMIN_PORT, p["status"]["podIP"])
            for p in pods(cluster, "envoy") if ready(p)]  # fmt: skip


def envoys_see(cluster: Cluster, hosts: set[str]) -> bool:
    """Every Envoy routes to exactly `hosts` (and there is at least one Envoy)."""
    admins = envoy_admins(cluster)
    return bool(admins) and bool(hosts) and all(a.healthy_hosts() == hosts for a in admins)


def target(cluster: Cluster) -> str:
    """Envoy's Service (its ClusterIP, through kube-proxy's rules, from the node)."""
    return f"{cluster.service_ip('envoy', NS)}:8080"


def test_server_pods_pass_their_grpc_probes(deployed: Cluster) -> None:
    servers = backend_pods(deployed)
    assert len(servers) == 3 + GO_PODS
    for pod in servers:
        probe = pod["spec"]["containers"][0]["readinessProbe"]
        assert probe["grpc"]["service"] == "grpctest.Grpctest"
        assert ready(pod), pod["status"]
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_envoy_sees_every_pod_through_the_control_plane(deployed: Cluster) -> None:
    hosts = server_ips(deployed)
    assert len(hosts) == 3 + GO_PODS
    assert len(envoy_admins(deployed)) == 2
    assert envoys_see(deployed, hosts)
    # Every endpoint came from the control plane (EDS), none from DNS.
    for admin in envoy_admins(deployed):
        stats = admin.stats("control_plane.")
        assert stats["control_plane.connected_state"] == 1, stats


def test_the_control_plane_may_only_read_endpointslices(deployed: Cluster) -> None:
    """Its ServiceAccount, asked of the API server (`kubectl auth can-i --as`): it may
    watch EndpointSlices in its namespace, and nothing else, nowhere else."""
    account = f"system:serviceaccount:{NS}:control-plane"

    def can(*what: str) -> bool:
        result = subprocess.run(
            [deployed.bin / "kubectl", "--kubeconfig", deployed.kubeconfig, "auth", "can-i",
             "--as", account, *what],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.stdout.strip() == "yes"

    assert can("watch", "endpointslices.discovery.k8s.io", "-n", NS)
    assert not can("watch", "endpointslices.discovery.k8s.io", "-n", "default")
    assert not can("list", "pods", "-n", NS)
    assert not can("get", "secrets", "-n", NS)
    assert not can("create", "endpointslices.discovery.k8s.io", "-n", NS)


def test_grpcurl_lists_the_services_through_envoys_service(deployed: Cluster) -> None:
    result = subprocess.run([command("grpcurl"), "-plaintext", target(deployed), "list"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "grpctest.Grpctest" in result.stdout.split()


def test_the_readmes_port_forward_reaches_envoy(deployed: Cluster) -> None:
    """`kubectl -n grpctest port-forward svc/envoy PORT:8080 &` then grpcurl `list` (on a
    free port: 8080 may be compose's)."""
    port = free_port()
    forward = subprocess.Popen(
        [*DIE_WITH_PARENT, deployed.bin / "kubectl", "--kubeconfig", deployed.kubeconfig,
         "-n", NS, "port-forward", "svc/envoy", f"{port}:8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: port_in_use(port), 30, "kubectl port-forward to listen")
        result = subprocess.run([command("grpcurl"), "-plaintext", f"localhost:{port}", "list"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        forward.terminate()
        try:
            forward.wait(30)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait()
    assert result.returncode == 0, result.stderr
    assert "grpctest.Grpctest" in result.stdout.split()


def test_every_replica_answers_through_envoys_service(deployed: Cluster) -> None:
    result = run_client("go-client", target(deployed), "--count", "60", "--timeout", "5",
                        *JSON_OUTPUT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(calls_per_replica(result.stdout)) == names(deployed)


JOBS = [f"{client}{way}" for client in ("go-client", "py-client") for way in ("", "-xds", "-dns")]


@pytest.mark.parametrize("job", JOBS)
def test_the_client_jobs_reach_every_replica(deployed: Cluster, job: str, figures) -> None:
    """`kubectl apply -k deploy/kubernetes/clients`, as its kustomization says, with the
    client's output as data (GRPCTEST_OUTPUT=json, as `docker compose run --env` does):
    through Envoy, proxyless (-xds: the stack's bootstrap ConfigMap) and over DNS (-dns:
    the headless Service `replicas`)."""
    deployed.kubectl("delete", "job", "-n", NS, job, "--ignore-not-found", "--wait=true")
    jobs = list(
        yaml.safe_load_all(deployed.kubectl("kustomize", str(REPO / "deploy/kubernetes/clients")))
    )
    for manifest in jobs:
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            container.setdefault("env", []).append({"name": "GRPCTEST_OUTPUT", "value": "json"})
    apply(deployed, yaml.safe_dump_all(jobs))
    deployed.kubectl("wait", "-n", NS, "--for=condition=Complete", f"job/{job}",
                     "--timeout=180s", timeout=200)  # fmt: skip
    output = deployed.kubectl("logs", "-n", NS, f"job/{job}")
    per_replica = calls_per_replica(output)
    figures[f"k8s: {job} Job, calls per replica"] = per_replica
    assert sum(per_replica.values()) == 30, output
    assert set(per_replica) == names(deployed)


@pytest.fixture(scope="module")
def paths(deployed: Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[CallPath]:
    """Envoy's Service, and proxyless over xDS from the node: the bootstrap names the
    control plane's Service, and the node reaches the pod addresses it sends."""
    bootstrap = tmp_path_factory.mktemp("xds") / "xds-bootstrap.json"
    write_bootstrap(bootstrap, f"{deployed.service_ip('control-plane', NS)}:18000")
    return [through_envoy(target(deployed)), proxyless(bootstrap)]


def fault_under_load(
    cluster: Cluster,
    paths: list[CallPath],
    fault: Callable[[], None],
    figures,
    name: str,
    loads: list[Load] | None = None,
    victim: dict | None = None,
) -> None:
    """Runs `fault` (which returns once the cluster has recovered) under `loads` (both
    clients on every path by default), once they are calling and, given a `victim` pod,
    Envoy has sent it calls; records what the loads saw and the seconds to recover;
    asserts no call failed and every load was answered before the fault and after it."""
    loads = loads or list(path_loads(paths, CALLERS, CONNECTIONS))
    on_victim = (lambda: wait_calls_on(cluster, victim)) if victim else lambda: None
    window, reports = under_load(loads, fault, on_victim)
    figures[f"k8s: {name} under load"] = (
        f"{'; '.join(map(str, reports))}; "
        f"{window.end.monotonic - window.start.monotonic:.1f} s to recover"
    )
    try:
        assert_ran_through(reports)
    except AssertionError as failed:  # (then: how each Envoy judged the replicas)
        raise AssertionError(f"{failed}; Envoys: {envoys_judged(cluster)}") from None


def wait_calls_on(cluster: Cluster, pod: dict) -> None:
    """Until the Envoys have sent the pod more calls (the load is on it)."""
    host = f"{pod['status']['podIP']}:50051"

    def sent() -> int:
        return sum(admin.requests_per_host().get(host, 0) for admin in envoy_admins(cluster))

    before = sent()
    wait_until(lambda: sent() > before, 30, f"calls on {pod['metadata']['name']}")


def envoys_judged(cluster: Cluster) -> list[dict[str, int]]:
    """Each Envoy's health-check and ejection counters."""
    return [
        admin.stats("cluster.grpctest.health_check.")
        | admin.stats("cluster.grpctest.outlier_detection.ejections_enforced")
        for admin in envoy_admins(cluster)
    ]


def wait_recovered(cluster: Cluster, replicas: int, timeout: float = 180) -> None:
    """Until `replicas` py-server pods and the go-server pod are ready and every Envoy
    routes to exactly those."""

    def recovered() -> bool:
        hosts = server_ips(cluster)
        return len(hosts) == replicas + GO_PODS and envoys_see(cluster, hosts)

    wait_until(recovered, timeout, f"{replicas} + {GO_PODS} ready pods in Envoy's rotation", 0.5)


@pytest.mark.parametrize("app", BACKENDS)
def test_a_deleted_pod_loses_no_call(deployed: Cluster, paths, app: str, figures) -> None:
    """A py-server pod, and the go-server pod: each drains (preStop, NOT_SERVING, grace)."""
    pod = serving_pod(deployed, app)
    victim = pod["metadata"]["name"]

    def delete() -> None:
        deployed.kubectl("delete", "pod", "-n", NS, victim, "--wait=false")
        wait_until(lambda: victim not in names(deployed), 60, f"{victim} to go")
        wait_recovered(deployed, 3)

    fault_under_load(deployed, paths, delete, figures, f"{app} pod deleted", victim=pod)


def test_a_rollout_restart_loses_no_call(deployed: Cluster, paths, figures) -> None:
    def restart() -> None:
        deployed.kubectl("rollout", "restart", "-n", NS, SERVERS)
        deployed.kubectl("rollout", "status", "-n", NS, SERVERS, "--timeout=300s", timeout=330)
        wait_recovered(deployed, 3)

    fault_under_load(deployed, paths, restart, figures, "rollout restart")


def test_scaling_to_5_balances_over_5_within_seconds(deployed: Cluster, paths, figures) -> None:
    seconds: dict[str, float] = {}
    loads: list[Load] = list(path_loads(paths, CALLERS, CONNECTIONS))
    python = loads[0]  # (the Python load through Envoy)
    assert isinstance(python, PythonLoad)

    def scale() -> None:
        """Scaled, in every Envoy's rotation, and then every pod answered the load."""
        start = time.monotonic()
        deployed.kubectl("scale", "-n", NS, SERVERS, "--replicas=5")
        wait_recovered(deployed, 5)
        seconds["in rotation"] = time.monotonic() - start
        # (The ready ones: pods an earlier rollout is still stopping answer nothing.)
        since = time.monotonic()
        pods = {p["metadata"]["name"] for p in backend_pods(deployed) if ready(p)}
        wait_until(lambda: set(python.replicas_since(since)) == pods, 60,
                   f"every one of {len(pods)} pods to answer")  # fmt: skip
        figures["k8s: calls per pod, from in rotation until each had answered"] = dict(
            python.replicas_since(since)
        )

    fault_under_load(deployed, paths, scale, figures, "scale to 5", loads)
    figures["k8s: seconds from scale 5 to 5 pods in every Envoy's rotation"] = round(
        seconds["in rotation"], 1
    )

    def scale_back() -> None:
        deployed.kubectl("scale", "-n", NS, SERVERS, "--replicas=3")
        wait_recovered(deployed, 3)

    fault_under_load(deployed, paths, scale_back, figures, "scale back to 3")


def test_a_container_killed_inside_its_pod_loses_no_call(deployed: Cluster, paths, figures) -> None:
    victim = serving_pod(deployed)
    container = victim["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    name = victim["metadata"]["name"]

    def restarts() -> int:
        pod = deployed.kubectl_json("get", "pod", "-n", NS, name)
        return pod["status"]["containerStatuses"][0]["restartCount"]

    def kill() -> None:
        deployed.ctr("tasks", "kill", "--signal", "SIGKILL", container)
        wait_until(lambda: restarts() == 1, 60, f"the kubelet to restart {name}'s container")
        wait_recovered(deployed, 3)

    fault_under_load(
        deployed, paths, kill, figures, "container killed (SIGKILL) in its pod", victim=victim
    )
