"""The Kubernetes manifests (deploy/kubernetes), validated offline.

Checked as far as that goes without a cluster (test_kubernetes_cluster.py runs them on
a real one, in `make test-cluster`): rendered with the pinned kustomize, validated
against the pinned Kubernetes versions' schemas (strict: an unknown field fails), held
to what the rest of the project promises (gRPC health probes, every replica behind
Envoy through the control plane, a drain the kubelet waits for, no root), and the Envoy
config they carry is
envoy/envoy.yaml itself, which Envoy accepts with the files mounted exactly as the pod
would see them.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from grpctest_devtools.envoy import envoy_binary
from grpctest_devtools.envoy_config import relocate_files
from grpctest_devtools.repo import ENVOY_YAML, REPO, command

# The oldest Kubernetes the manifests are for (the preStop `sleep` action is on by
# default from 1.30) and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
OVERLAY = Path("deploy/kubernetes/overlays/kind")
CLIENTS = Path("deploy/kubernetes/clients")
# The Deployments behind Envoy: the same contract in Python and in Go.
SERVERS = ("py-server", "go-server")
# What the overlay reads from the rest of the checkout (certs/ is made by the fixture).
INPUTS = ("deploy/kubernetes", "envoy", "web/dist", "control-plane/xds-bootstrap.json")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What kustomize reads, copied next to development certificates of its own (the
    checkout's certs/ is left as it is)."""
    root = tmp_path_factory.mktemp("kubernetes")
    for path in INPUTS:
        if (REPO / path).is_dir():
            shutil.copytree(REPO / path, root / path)
        else:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, root / path)
    subprocess.run([REPO / "certs" / "generate.sh", root / "certs"], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    return root


def kustomize(checkout: Path, folder: Path) -> str:
    result = subprocess.run(
        [command("kustomize"), "build", "--load-restrictor", "LoadRestrictionsNone", folder],
        cwd=checkout, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered(checkout: Path) -> Path:
    """The overlay and the client Jobs, rendered into one file of documents."""
    path = checkout / "rendered.yaml"
    path.write_text(kustomize(checkout, OVERLAY) + "---\n" + kustomize(checkout, CLIENTS))
    return path


@pytest.fixture(scope="module")
def objects(rendered: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object."""
    return {
        (obj["kind"], obj["metadata"]["name"]): obj
        for obj in yaml.safe_load_all(rendered.read_text())
    }


def validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("kubernetes-validate"), "--strict", "--quiet", "-k", version, path],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def pod(objects: dict, kind: str, name: str) -> dict[str, Any]:
    return objects[kind, name]["spec"]["template"]["spec"]


def containers(objects: dict) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for (kind, name), obj in objects.items():
        if kind in ("Deployment", "Job"):
            spec = obj["spec"]["template"]["spec"]
            for container in spec["containers"]:
                yield name, spec, container


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes(rendered: Path, version: str) -> None:
    result = validate(rendered, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validation_is_strict(rendered: Path, tmp_path: Path) -> None:
    """A misspelt field fails, so the validation above would catch one."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("readinessProbe:", "readynessProbe:", 1))
    result = validate(broken, KUBERNETES_VERSIONS[-1])
    assert result.returncode == 1, result.stdout + result.stderr  # 1: did not validate
    # (kubernetes-validate reports only as text; its one ERROR line names the field.)
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1, result.stdout
    assert "readynessProbe" in errors[0], result.stdout


def test_envoy_config_is_envoy_yaml_itself(objects: dict) -> None:
    """What Envoy's pod has in /etc/envoy is the checkout's envoy/, byte for byte."""
    files = pod_files(objects, "envoy")
    for name in ("envoy.yaml", "grpctest.binpb"):
        assert files[f"/etc/envoy/{name}"] == (REPO / "envoy" / name).read_bytes(), name


def test_every_replica_reaches_envoy_through_the_control_plane(objects: dict) -> None:
    """Envoy's upstream cluster takes its endpoints from the control plane (EDS over
    ADS), which Envoy reaches as the Service `control-plane`; the control plane watches
    the EndpointSlices of each server's headless Service: one address per pod."""
    envoy = yaml.safe_load(ENVOY_YAML.read_text())
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    assert clusters["grpctest"]["type"] == "EDS"
    (endpoint,) = clusters["control_plane"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    socket = endpoint["endpoint"]["address"]["socket_address"]
    service = objects["Service", socket["address"]]["spec"]
    assert socket["port_value"] in [p["port"] for p in service["ports"]]
    assert service["selector"].items() <= pod_labels(objects, "control-plane").items()
    (control_plane,) = pod(objects, "Deployment", "control-plane")["containers"]
    env = {e["name"]: e.get("value") for e in control_plane["env"]}
    assert env["GRPCTEST_DISCOVERY"] == "kubernetes"
    servers = dict(s.split(":") for s in env["GRPCTEST_SERVERS"].split(","))
    assert servers.keys() == set(SERVERS)
    for name, port in servers.items():
        service = objects["Service", name]["spec"]
        assert service["clusterIP"] == "None"
        assert int(port) in [p["port"] for p in service["ports"]]
        assert service["selector"].items() <= pod_labels(objects, name).items()


def test_the_control_plane_may_read_endpointslices_here_and_nothing_else(objects: dict) -> None:
    """Least privilege: its own ServiceAccount, bound in its namespace (a Role, not a
    ClusterRole) to get, list and watch EndpointSlices; no other pod gets a token."""
    spec = pod(objects, "Deployment", "control-plane")
    assert spec["serviceAccountName"] == "control-plane"
    assert spec["automountServiceAccountToken"] is True
    assert objects["ServiceAccount", "control-plane"]["automountServiceAccountToken"] is False
    binding = objects["RoleBinding", "control-plane"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "control-plane"}  # fmt: skip
    account = objects["ServiceAccount", "control-plane"]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "control-plane", "namespace": account["namespace"]}
    ]
    assert objects["Role", "control-plane"]["rules"] == [
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["get", "list", "watch"]}
    ]  # fmt: skip
    assert not [kind for kind, _ in objects if kind in ("ClusterRole", "ClusterRoleBinding")]


def pod_labels(objects: dict, deployment: str) -> dict[str, str]:
    return objects["Deployment", deployment]["spec"]["template"]["metadata"]["labels"]


def test_envoy_service_has_the_listeners_but_not_admin(objects: dict) -> None:
    envoy = yaml.safe_load(ENVOY_YAML.read_text())
    listeners = {
        listener["address"]["socket_address"]["port_value"]
        for listener in envoy["static_resources"]["listeners"]
    }
    admin = envoy["admin"]["address"]["socket_address"]["port_value"]
    ports = {p["port"] for (kind, _), obj in objects.items() if kind == "Service"
             for p in obj["spec"]["ports"]}  # fmt: skip
    assert listeners <= ports
    assert admin not in ports
    # Other pods may reach the listeners only.
    policy = objects["NetworkPolicy", "envoy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels(objects, "envoy").items()
    allowed = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    named = {p["name"]: p["containerPort"] for p in pod(objects, "Deployment", "envoy")
             ["containers"][0]["ports"]}  # fmt: skip
    assert {named[p] for p in allowed} == listeners


@pytest.mark.parametrize("name", SERVERS)
def test_replicas_are_probed_over_grpc_health(objects: dict, name: str) -> None:
    (server,) = pod(objects, "Deployment", name)["containers"]
    grpc_port = next(p["containerPort"] for p in server["ports"] if p["name"] == "grpc")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert server[probe]["grpc"]["port"] == grpc_port, probe
    # Ready means the service itself is SERVING (it is not while draining).
    assert server["readinessProbe"]["grpc"]["service"] == "grpctest.Grpctest"


@pytest.mark.parametrize("name", SERVERS)
def test_the_kubelet_waits_for_the_drain(objects: dict, name: str) -> None:
    spec = pod(objects, "Deployment", name)
    (server,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain, grace = int(env["GRPCTEST_DRAIN_SECONDS"]), int(env["GRPCTEST_GRACE_SECONDS"])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain + grace


def test_disruption_budgets_cover_every_deployment(objects: dict) -> None:
    for name in (*SERVERS, "envoy"):
        budget = objects["PodDisruptionBudget", name]["spec"]
        assert budget["selector"]["matchLabels"].items() <= pod_labels(objects, name).items()


def test_every_container_is_bounded_and_unprivileged(objects: dict) -> None:
    seen = set()
    for name, spec, container in containers(objects):
        seen.add(name)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        # Only the control plane talks to the API server (its own test, above).
        assert spec["automountServiceAccountToken"] is (name == "control-plane"), name
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][kind].keys(), (name, kind)
    clients = {f"{client}{way}" for client in ("go-client", "py-client")
               for way in ("", "-xds", "-dns")}  # fmt: skip
    assert seen == {*SERVERS, "control-plane", "envoy", *clients}


def test_images_are_the_ones_compose_runs(objects: dict) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    # (by the container's name: the client Jobs, three ways, run the client services' images)
    for name, _, container in containers(objects):
        assert container["image"] == compose[container["name"]]["image"], name


def test_envoy_accepts_the_rendered_config(objects: dict, tmp_path: Path) -> None:
    """`envoy --mode validate` on envoy.yaml as the pod has it: every file the config
    names (certificates, key set, descriptor, web page) written where the pod's volumes
    put it, under a folder of its own."""
    for path, content in pod_files(objects, "envoy").items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_bytes(content)
    (envoy,) = pod(objects, "Deployment", "envoy")["containers"]
    config_path = envoy["args"][envoy["args"].index("-c") + 1]
    config = yaml.safe_load((tmp_path / config_path.lstrip("/")).read_text())
    # Every path under one of the pod's mounts, under tmp_path.
    mounts = [m["mountPath"].rstrip("/") + "/" for m in envoy["volumeMounts"]]
    relocate_files(config, {m: tmp_path / m.lstrip("/") for m in mounts})
    validated = tmp_path / "validated.yaml"
    validated.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", validated, "--log-level", "warn"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def pod_files(objects: dict, deployment: str) -> dict[str, bytes]:
    """The files the deployment's container sees through its volumes, by absolute path."""
    spec = pod(objects, "Deployment", deployment)
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    return {
        f"{mount['mountPath'].rstrip('/')}/{path}": content
        for mount in container["volumeMounts"]
        for path, content in volume_files(objects, volumes[mount["name"]]).items()
    }


def volume_files(objects: dict, volume: dict[str, Any]) -> dict[str, bytes]:
    """The files a configMap, secret or projected volume holds, by path."""
    sources = volume["projected"]["sources"] if "projected" in volume else [volume]
    files: dict[str, bytes] = {}
    for source in sources:
        if "configMap" in source:
            ref = source["configMap"]
            obj = objects["ConfigMap", ref["name"]]
            data = {k: v.encode() for k, v in obj.get("data", {}).items()}
            data |= {k: base64.b64decode(v) for k, v in obj.get("binaryData", {}).items()}
        else:
            ref = source["secret"]
            obj = objects["Secret", ref.get("name") or ref["secretName"]]
            data = {k: base64.b64decode(v) for k, v in obj["data"].items()}
        items = ref.get("items") or [{"key": key, "path": key} for key in data]
        files |= {item["path"]: data[item["key"]] for item in items}
    return files
