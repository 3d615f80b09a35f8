"""The xDS control plane of the local run, and the bootstrap proxyless clients dial it with.

control-plane/xds-bootstrap.json is the one source of truth for gRPC clients' xDS
bootstrap (written for compose, where the control plane is control-plane:18000); the
local run changes only the server's address, as it does for Envoy's config.

    Process("control-plane", control_plane_argv(18000, ["127.0.0.1:50051", ...]))
    write_bootstrap(path, "127.0.0.1:18000")   # then GRPC_XDS_BOOTSTRAP=path, xds:///grpctest
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpctest_devtools.repo import REPO, command

BOOTSTRAP = REPO / "control-plane" / "xds-bootstrap.json"
# What a proxyless client dials: the Listener the control plane serves.
XDS_TARGET = "xds:///grpctest"
# The variable gRPC (C-core and grpc-go) reads the bootstrap file's path from.
BOOTSTRAP_VARIABLE = "GRPC_XDS_BOOTSTRAP"


def control_plane_argv(port: int, replicas: Sequence[str], args: Sequence[str] = ()) -> list[str]:
    """bin/control-plane on 127.0.0.1:port, publishing `replicas` ([name=]ip:port)."""
    return [command("control-plane"), "--port", str(port), "--servers", ",".join(replicas), *args]


def bootstrap(server: str) -> dict[str, Any]:
    """control-plane/xds-bootstrap.json with every xDS server's address set to `server`."""
    config: dict[str, Any] = json.loads(BOOTSTRAP.read_text(encoding="utf-8"))
    for xds_server in config["xds_servers"]:
        xds_server["server_uri"] = server
    return config


def write_bootstrap(path: Path, server: str) -> Path:
    path.write_text(json.dumps(bootstrap(server), indent=2) + "\n", encoding="utf-8")
    return path
