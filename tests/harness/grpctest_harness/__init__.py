"""grpctest's test harness: what the tests need that these machines lack.

None of this is part of the product; it exists so that the container, swarm and fault
tests run on a machine without a container registry or a running Docker engine.

docker_engine a Docker engine for tests: started if none runs, stopped again
base_images   offline stand-ins for the public base images (no registry needed)
compose       a docker compose project as the tests drive it
swarm         a real two-node Docker Swarm on one machine (a worker in a netns)
load          concurrent client load: Python (grpc.aio) and Go (ghz) callers, and the
              Load protocol any other kind of load follows to join a drill
channels      the loads' grpc.aio channels, each on a connection of its own
faults        fault drills: kill, freeze or restart replicas under loads, and measure
stream_load   streams and chats as a load of a fault drill: no reply lost or repeated
cluster       a single-node Kubernetes cluster (etcd, control plane, containerd, kubelet,
              kube-proxy, CoreDNS) on paths and networks of its own, torn down completely
cluster_pki   the cluster's certificates and kubeconfigs
cluster_images the images and the pause stand-in, built on an engine of the cluster's own
cluster_cleanup what the cluster leaves (processes, mounts, cgroups, links, iptables), removed
"""
