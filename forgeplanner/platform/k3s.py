"""K3s install commands per node, as text for the user (never executed here).

The documented install (docs.k3s.io/quick-start): `curl -sfL https://get.k3s.io | sh -` on the
server; agents join with K3S_URL=https://SERVER:6443 and K3S_TOKEN (the server's
/var/lib/rancher/k3s/server/node-token). Labels and taints are set at registration with
`--node-label` and `--node-taint` (k3s server/agent flags). INSTALL_K3S_CHANNEL=stable picks
the stable release channel.

Inference Macs are not K3s nodes; their command starts the inference server reachable from the
cluster on the Mac's shelf-network address only: `OLLAMA_HOST=ADDRESS:11434 ollama serve`
(Ollama FAQ: "How do I configure Ollama server?", OLLAMA_HOST sets the bind address) or
`mlx_lm.server --host ADDRESS --port 8080`. Never 0.0.0.0: neither server authenticates, and
0.0.0.0 also listens on Wi-Fi and every other interface. A NetworkPolicy keeps unlabelled pods
away from them (forgeplanner.platform.network_policy).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from forgeplanner.engine.platform_layout import NodeLayout, PlatformLayout

INSTALL_URL = "https://get.k3s.io"
SUGGESTED_SUBNET = "10.20.0."


@dataclass(frozen=True, slots=True)
class NodeCommand:
    node: str
    purpose: str
    command: str

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "purpose": self.purpose, "command": self.command}


def suggested_addresses(names: list[str]) -> dict[str, str]:
    """A static address per node on the shelf's network (a suggestion: use your own)."""
    return {name: f"{SUGGESTED_SUBNET}{10 + i}" for i, name in enumerate(names)}


def _flags(node: NodeLayout) -> str:
    parts = [f"--node-name {node.name}"]
    parts += [f"--node-label {k}={v}" for k, v in sorted(node.labels.items())]
    parts += [f"--node-taint {t['key']}={t['value']}:{t['effect']}" for t in node.taints]
    return " ".join(parts)


def install_commands(
    layout: PlatformLayout,
    addresses: Mapping[str, str],
    mlx_model: str = "MLX_MODEL",
    manifests_dir: str = "DIR",
) -> list[NodeCommand]:
    out: list[NodeCommand] = []
    server = layout.server
    if server is not None:
        out.append(
            NodeCommand(
                server.name,
                "install the K3s server (control plane)",
                f"curl -sfL {INSTALL_URL} | INSTALL_K3S_CHANNEL=stable sh -s - server "
                f"{_flags(server)} --node-ip {addresses[server.name]}",
            )
        )
        for n in layout.nodes:
            if n.k3s != "agent":
                continue
            out.append(
                NodeCommand(
                    n.name,
                    "fetch the join token from the server",
                    f'NODE_TOKEN="$(ssh {addresses[server.name]} sudo cat '
                    '/var/lib/rancher/k3s/server/node-token)"',
                )
            )
            out.append(
                NodeCommand(
                    n.name,
                    f"join as a K3s agent ({', '.join(n.roles)})",
                    f"curl -sfL {INSTALL_URL} | INSTALL_K3S_CHANNEL=stable "
                    f"K3S_URL=https://{addresses[server.name]}:6443 "
                    f'K3S_TOKEN="$NODE_TOKEN" sh -s - agent {_flags(n)} '
                    f"--node-ip {addresses[n.name]}",
                )
            )
    for n in layout.nodes:
        if "inference" not in n.roles:
            continue
        addr = addresses[n.name]
        if layout.runtime == "mlx":
            cmd = f"mlx_lm.server --model {mlx_model} --host {addr} --port 8080"
        elif layout.runtime == "llama.cpp":
            cmd = f"llama-server -m MODEL.gguf --host {addr} --port 8080 --metrics"
        else:
            cmd = f"OLLAMA_HOST={addr}:11434 ollama serve"
        out.append(
            NodeCommand(
                n.name,
                f"start {layout.runtime} on macOS for the cluster, listening on the shelf "
                f"network only ({addr}; it has no authentication: keep that network private "
                "and only pods labelled forgeplanner.io/inference-client=true may call it)",
                cmd,
            )
        )
    if server is not None:
        out.append(
            NodeCommand(
                server.name,
                "apply the manifests (written with --manifests; copy them to the server)",
                f"sudo k3s kubectl apply -f {shlex.quote(manifests_dir.rstrip('/') + '/')}",
            )
        )
    return out
