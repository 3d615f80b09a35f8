"""A single-node Kubernetes cluster on this machine, built from Kubernetes' own sources.

    with Cluster(workdir, bin_dir) as cluster:     # `make test-cluster` builds bin_dir
        cluster.load_images(tar)                   # `docker save` output, into k8s.io
        cluster.kubectl("apply", "-f", ...)

Control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler), one node
(containerd from Debian with its own root, state and socket; kubelet; kube-proxy in
iptables mode) and CoreDNS as a process on the node's bridge address, all on networks
of their own: pods in POD_CIDR on the bridge BRIDGE (Debian's CNI plugins), Services in
SERVICE_CIDR. Nothing uses a default path another engine on this machine uses.

Teardown stops everything in reverse order, then removes what may be left (containers,
mounts, cgroups, interfaces, iptables rules, the state folder), and fails naming what it
could not remove.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from grpctest_devtools.ports import LOOPBACK, free_port_block
from grpctest_devtools.processes import Process
from grpctest_devtools.waiting import wait_until
from grpctest_harness import cluster_cleanup, cluster_pki

log = logging.getLogger(__name__)

NODE = "grpctest-node"
BRIDGE = "grpctest-k8s0"
POD_CIDR = "10.244.0.0/24"
# The node's address: the bridge's, the pods' gateway; the apiserver, kubelet and
# CoreDNS listen on it (nothing of the cluster listens on the machine's own network).
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.97.0.0/24"
API_SERVICE_IP = "10.97.0.1"
CGROUP_ROOT = "grpctest-k8s"
# The sandbox image kubeadm v1.34 names (a stand-in here, see base_images).
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
CNI_PLUGINS = Path("/usr/lib/cni")
# Kernel settings the cluster needs: pods reach Services through kube-proxy's rules,
# also when both ends are on the bridge. Their old values are put back at teardown.
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}


def run(*argv: str | Path, timeout: float = 120, check: bool = True) -> str:
    """Runs a command; its stdout, or RuntimeError with its output if it fails. A
    command that does not end within `timeout` is killed: with check=False (teardown,
    polling) that is logged and its stdout taken as empty, so the caller carries on."""
    try:
        result = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as err:
        if check:
            raise RuntimeError(f"{' '.join(map(str, argv))} did not end in {timeout} s") from err
        log.warning("%s did not end in %s s; killed", " ".join(map(str, argv)), timeout)
        return ""
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


def _write_json(path: Path, value: object) -> Path:
    """Writes YAML's subset JSON (the components' config files accept it)."""
    path.write_text(json.dumps(value, indent=2))
    return path


class Cluster:
    """The cluster, its state under `workdir` (a short path: unix sockets live there)."""

    def __init__(self, workdir: Path, bin_dir: Path) -> None:
        self.dir = workdir
        self.bin = bin_dir
        self.pki = workdir / "pki"
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.containerd_socket = workdir / "containerd" / "containerd.sock"
        self.processes: list[Process] = []
        self.sysctls: dict[str, str] = {}
        self.etcd_url = ""
        self.boot_seconds: dict[str, float] = {}

    # -- using it ------------------------------------------------------------------------

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return run(
            self.bin / "kubectl", "--kubeconfig", self.kubeconfig, *args,
            timeout=timeout, check=check,
        )  # fmt: skip

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def ctr(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        return run(
            "ctr", "--address", self.containerd_socket, "--namespace", "k8s.io", *args,
            timeout=timeout, check=check,
        )  # fmt: skip

    def load_images(self, tar: Path) -> None:
        """Imports `docker save` output into containerd's k8s.io namespace (the kubelet's)."""
        self.ctr("images", "import", str(tar), timeout=600)

    def service_ip(self, name: str, namespace: str) -> str:
        return self.kubectl_json("get", "service", "-n", namespace, name)["spec"]["clusterIP"]

    # -- bring-up ------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        # Another Kubernetes on this machine (kind, k3s, minikube) has kube-proxy chains
        # of the same names, which ours would rewrite and its teardown remove: touch
        # nothing (no teardown either), say so.
        if theirs := cluster_cleanup.kubernetes_chains():
            raise RuntimeError(
                "another Kubernetes' iptables chains are on this machine "
                f"({', '.join(theirs[:5])}, ...): stop it before `make test-cluster`"
            )
        try:
            self._step("network", self._network)
            self._step("etcd", self._etcd)
            self._step("kube-apiserver", self._apiserver)
            self._step("controllers", self._controllers)
            self._step("containerd", self._containerd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def start_node(self) -> None:
        """The kubelet, kube-proxy and CoreDNS (after load_images: the pause image)."""
        try:
            self._step("kubelet", self._kubelet)
            self._step("kube-proxy", self._kube_proxy)
            self._step("coredns", self._coredns)
        except BaseException:
            self.__exit__()
            raise

    def _step(self, name: str, start: Callable[[], None]) -> None:
        """Runs one step of the bring-up and records how long it took."""
        began = time.monotonic()
        start()
        self.boot_seconds[name] = round(time.monotonic() - began, 1)
        log.info("cluster: %s up in %.1f s", name, self.boot_seconds[name])

    def _start(self, name: str, argv: Sequence[str | Path]) -> Process:
        process = Process(name, [str(a) for a in argv], self.dir / f"{name}.log")
        self.processes.append(process)
        process.start()
        return process

    def _network(self) -> None:
        self.sysctls = set_sysctls(SYSCTLS)
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # Pod to pod over the bridge passes the FORWARD chain (bridge-nf-call-iptables),
        # whose policy is DROP once a Docker engine has run on this machine (dockerd sets
        # it and leaves it): accept the bridge's own traffic, first, marked for teardown.
        run("iptables", "-I", "FORWARD", "1", "-i", BRIDGE, "-o", BRIDGE,
            *cluster_cleanup.RULE_MARK, "-j", "ACCEPT")  # fmt: skip
        cluster_pki.write(self.pki, NODE_IP, API_SERVICE_IP)
        cluster_pki.kubeconfig(self.kubeconfig, self.pki, f"https://{NODE_IP}:6443")

    def _etcd(self) -> None:
        port = free_port_block(2)
        self.etcd_url = f"http://{LOOPBACK}:{port}"
        peer = f"http://{LOOPBACK}:{port + 1}"
        etcd = self._start("etcd", [
            self.bin / "etcd", "--data-dir", self.dir / "etcd",
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}", "--log-level", "warn",
        ])  # fmt: skip
        wait_until(
            lambda: etcd.check_alive()
            and '"health":"true"' in run("curl", "-s", f"{self.etcd_url}/health", check=False),
            60, "etcd to be healthy", 0.5,
        )  # fmt: skip

    def _apiserver(self) -> None:
        pki = self.pki
        apiserver = self._start("kube-apiserver", [
            self.bin / "kube-apiserver",
            "--etcd-servers", self.etcd_url,
            "--bind-address", NODE_IP, "--advertise-address", NODE_IP, "--secure-port", "6443",
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--client-ca-file", pki / "ca.crt",
            "--tls-cert-file", pki / "apiserver.crt",
            "--tls-private-key-file", pki / "apiserver.key",
            "--kubelet-client-certificate", pki / "admin.crt",
            "--kubelet-client-key", pki / "admin.key",
            # Logs, exec, port-forward: to the node's address (its name is in no DNS).
            "--kubelet-preferred-address-types", "InternalIP",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", pki / "sa.pub",
            "--service-account-signing-key-file", pki / "sa.key",
            "--authorization-mode", "Node,RBAC",
            "--enable-priority-and-fairness=false",
        ])  # fmt: skip
        wait_until(
            lambda: apiserver.check_alive()
            and self.kubectl("get", "--raw", "/readyz", check=False).strip() == "ok",
            120, "kube-apiserver to be ready", 1,
        )  # fmt: skip

    def _controllers(self) -> None:
        common: list[str | Path] = [
            "--kubeconfig", self.kubeconfig, "--leader-elect=false", "--secure-port=0",
        ]  # fmt: skip
        self._start("kube-controller-manager", [
            self.bin / "kube-controller-manager", *common,
            "--service-account-private-key-file", self.pki / "sa.key",
            "--root-ca-file", self.pki / "ca.crt",
            "--use-service-account-credentials=false",
            "--service-cluster-ip-range", SERVICE_CIDR,
        ])  # fmt: skip
        self._start("kube-scheduler", [self.bin / "kube-scheduler", *common])

    def _containerd(self) -> None:
        root = self.dir / "containerd"
        cni = self.dir / "cni"
        cni.mkdir()
        _write_json(cni / "10-grpctest.conflist", cni_config(self.dir / "cni-ipam"))
        (root / "config.toml").parent.mkdir(exist_ok=True)
        (root / "config.toml").write_text(containerd_config(root, cni))
        containerd = self._start("containerd", ["containerd", "--config", root / "config.toml"])
        wait_until(
            lambda: containerd.check_alive() and self.ctr("version", check=False) != "",
            60, "containerd to answer", 0.5,
        )  # fmt: skip

    def _kubelet(self) -> None:
        make_cgroup_root(CGROUP_ROOT)
        config = _write_json(self.dir / "kubelet.json", kubelet_config(self))
        kubelet = self._start("kubelet", [
            self.bin / "kubelet", "--config", config, "--kubeconfig", self.kubeconfig,
            "--root-dir", self.dir / "kubelet", "--cert-dir", self.dir / "kubelet-pki",
            "--hostname-override", NODE, "--node-ip", NODE_IP,
        ])  # fmt: skip

        def ready() -> bool:
            kubelet.check_alive()
            out = self.kubectl("get", "node", NODE, "-o",
                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                               check=False)  # fmt: skip
            return out.strip() == "True"

        wait_until(ready, 180, f"node {NODE} to be Ready", 1)

    def _kube_proxy(self) -> None:
        config = _write_json(self.dir / "kube-proxy.json", kube_proxy_config(self.kubeconfig))
        proxy = self._start("kube-proxy", [self.bin / "kube-proxy", "--config", config])
        wait_until(
            lambda: proxy.check_alive()
            and "KUBE-SERVICES" in run("iptables", "-t", "nat", "-S", check=False),
            60, "kube-proxy's rules", 0.5,
        )  # fmt: skip

    def _coredns(self) -> None:
        corefile = self.dir / "Corefile"
        corefile.write_text(coredns_config(self.kubeconfig))
        coredns = self._start("coredns", [self.bin / "coredns", "-conf", corefile])

        # The ready plugin answers once the kubernetes plugin has synced with the API.
        ready = f"http://{NODE_IP}:8181/ready"
        wait_until(
            lambda: coredns.check_alive() and run("curl", "-s", ready, check=False) == "OK",
            60, "CoreDNS to be ready", 0.5,
        )  # fmt: skip

    # -- teardown ------------------------------------------------------------------------

    def __exit__(self, *exc: object) -> None:
        if self.kubeconfig.exists() and any(p.name == "kube-apiserver" and p.running
                                            for p in self.processes):  # fmt: skip
            self._delete_workloads()
        for process in reversed(self.processes):
            if process.name != "containerd":
                process.stop(30)
        self._remove_containers()
        for process in self.processes:
            if process.name == "containerd":
                process.stop(30)
        leftovers = cluster_cleanup.clean(self.dir, BRIDGE, CGROUP_ROOT)
        restore_sysctls(self.sysctls)
        self.processes = []
        if leftovers:
            raise RuntimeError("the cluster left things behind: " + "; ".join(leftovers))

    def _delete_workloads(self) -> None:
        """Deletes every pod the way a user would, so that the kubelet stops them itself
        (graceful stop, CNI DEL, volumes unmounted)."""
        for ns in self.kubectl("get", "ns", "-o", "name", check=False).split():
            name = ns.split("/", 1)[1]
            if name not in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.kubectl("delete", ns, "--wait=false", check=False)
        self.kubectl("delete", "pods", "--all", "--all-namespaces", "--wait=true",
                     "--timeout=90s", timeout=120, check=False)  # fmt: skip

    def _remove_containers(self) -> None:
        """What the kubelet did not stop: killed and removed through containerd."""
        if not any(p.name == "containerd" and p.running for p in self.processes):
            return
        # (`delete --force` kills a task that still runs.)
        for task in self.ctr("tasks", "ls", "-q", check=False, timeout=60).split():
            self.ctr("tasks", "delete", "--force", task, check=False, timeout=60)
        for container in self.ctr("containers", "ls", "-q", check=False, timeout=60).split():
            self.ctr("containers", "delete", container, check=False, timeout=60)


def make_cgroup_root(name: str) -> None:
    """The pods' parent cgroup in every hierarchy (the kubelet wants it there; cgroup v1
    has no hierarchy for all), with the machine's CPUs and memory nodes for cpuset."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        if (hierarchy / "cgroup.procs").exists():
            (hierarchy / name).mkdir(exist_ok=True)
    cpuset = Path("/sys/fs/cgroup/cpuset")
    for setting in ("cpuset.cpus", "cpuset.mems"):
        (cpuset / name / setting).write_text((cpuset / setting).read_text())


def set_sysctls(values: dict[str, str]) -> dict[str, str]:
    """Sets kernel settings; returns their old values."""
    old = {}
    for key, value in values.items():
        path = Path("/proc/sys") / key
        old[key] = path.read_text().strip()
        path.write_text(value)
    return old


def restore_sysctls(old: dict[str, str]) -> None:
    """Puts the old values back, but leaves forwarding on while the machine's default
    Docker engine runs (started meanwhile: its containers need it)."""
    for key, value in old.items():
        if key == "net/ipv4/ip_forward" and Path("/var/run/docker.pid").exists():
            continue
        (Path("/proc/sys") / key).write_text(value)


def cni_config(ipam_dir: Path) -> dict:
    """The pod network: one bridge, addresses from host-local (its state in ipam_dir);
    no masquerading (pods talk only to each other and to the node)."""
    return {
        "cniVersion": "0.4.0",
        "name": "grpctest",
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
            # A pod may reach itself through a Service.
            "hairpinMode": True,
            "ipam": {
                "type": "host-local", "dataDir": str(ipam_dir),
                "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        }],
    }  # fmt: skip


def containerd_config(root: Path, cni: Path) -> str:
    """containerd 1.6 with every path of its own: root, state, sockets, runc's state and
    the pods' network namespaces all under `root`."""
    return f"""version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = "{root}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  # This machine's root lacks CAP_SYS_RESOURCE: no oom_score_adj below containerd's own
  # (the kubelet asks -998 for sandboxes, which runc then fails to set).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_PLUGINS}"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{root}/runc"
"""


def kubelet_config(cluster: Cluster) -> dict:
    """cgroupfs (PID 1 is not systemd), pods' cgroups under CGROUP_ROOT, no swap check,
    CoreDNS on the node's address, and eviction only when the disk is really full (the
    machine's disk is shared)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": 10250, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False}, "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(cluster.pki / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{cluster.containerd_socket}",
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False, "failCgroupV1": False,
        "clusterDNS": [NODE_IP], "clusterDomain": "cluster.local",
        "podLogsDir": str(cluster.dir / "pod-logs"),
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
    }  # fmt: skip


def kube_proxy_config(kubeconfig: Path) -> dict:
    """iptables mode; leaves the machine's conntrack and route_localnet settings alone."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables", "hostnameOverride": NODE, "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"{NODE_IP}:10256", "metricsBindAddress": f"{NODE_IP}:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0,
                      "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
    }  # fmt: skip


def coredns_config(kubeconfig: Path) -> str:
    """Cluster names only (nothing outside is reachable), no cache: a headless Service's
    records change as pods come and go, and clients that find replicas by DNS re-resolve
    within seconds."""
    return f""".:53 {{
    bind {NODE_IP}
    errors
    ready {NODE_IP}:8181
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
    }}
}}
"""
