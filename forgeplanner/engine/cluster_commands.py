"""Launch commands for the existing distributed engines, built from a cluster plan. Pure text.

ForgePlanner never runs its own distributed runtime: it prints what to run.

- llama.cpp RPC (tools/rpc/README.md in llama.cpp): `ggml-rpc-server -H ADDR -p PORT` on every
  node except the one that runs `llama-server`, then `llama-server`/`llama-bench` with
  `--rpc host:port,...` and the planned `--tensor-split`. `-H` must be an IPv4 address (the
  server binds with inet_addr, ggml-rpc transport.cpp). llama-server separates split values
  with commas, llama-bench with slashes (common/arg.cpp; tools/llama-bench/llama-bench.cpp).
  ggml-rpc-server has no authentication: bind it on the private cluster link only.
- MLX distributed: `mlx.launch --hostfile hosts.json -- mlx_lm.generate ...` (ml-explore
  mlx docs, "Launching Distributed Programs"); hostfile {"backend", "envs", "hosts": [{"ssh",
  "ips"}]}; `--pipeline` asks mlx-lm for pipeline rather than tensor parallelism; the JACCL
  (RDMA) hostfile needs each node's RDMA device names, which `mlx.distributed_config` discovers.
- exo: started on every node; nodes find each other on the local network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from forgeplanner.engine.cluster import ClusterPlan

RPC_PORT = 50052  # ggml-rpc-server's default port
# Suggested static addresses on the cluster link when the user gives none (a plan choice, not a
# fact: assign them in System Settings > Network, or pass your own).
SUGGESTED_SUBNET = "10.10.0."


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    engine: str  # "llama.cpp" | "mlx" | "exo"
    node: str  # node name it runs on, or "" for files/notes
    purpose: str
    command: str

    def to_dict(self) -> dict[str, str]:
        return {
            "engine": self.engine,
            "node": self.node,
            "purpose": self.purpose,
            "command": self.command,
        }


def default_addresses(names: list[str]) -> dict[str, str]:
    return {name: f"{SUGGESTED_SUBNET}{i + 1}" for i, name in enumerate(names)}


def _shell_quote(s: str) -> str:
    if s and all(c.isalnum() or c in "-_./:=,@%+" for c in s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def llamacpp_commands(
    plan: ClusterPlan,
    addresses: Mapping[str, str],
    model_path: str = "MODEL.gguf",
    port: int = RPC_PORT,
) -> list[LaunchCommand]:
    if plan.mode != "pipeline":
        return []
    host = plan.nodes[-1].name
    # Nodes the plan leaves without layers are left out of the RPC list and the split.
    active = [n for n in plan.nodes[:-1] if n.n_layers > 0]
    remotes = [n.name for n in active]
    split = [n.n_layers for n in active] + [plan.nodes[-1].n_layers + 1]  # +1: output layer
    out: list[LaunchCommand] = []
    for name in remotes:
        out.append(
            LaunchCommand(
                "llama.cpp",
                name,
                f"RPC server for layers {_range(plan, name)}",
                f"ggml-rpc-server -H {addresses[name]} -p {port}",
            )
        )
    rpc = ",".join(f"{addresses[n]}:{port}" for n in remotes)
    split_c = ",".join(str(v) for v in split)
    split_s = "/".join(str(v) for v in split)
    m = _shell_quote(model_path)
    rpc_arg = f" --rpc {rpc}" if remotes else ""
    split_arg_c = f" --tensor-split {split_c}" if remotes else ""
    split_arg_s = f" -ts {split_s}" if remotes else ""
    out.append(
        LaunchCommand(
            "llama.cpp",
            host,
            f"llama-server (holds layers {_range(plan, host)}, the output head and the "
            "token embedding)",
            f"llama-server -m {m} -c {plan.context} -ngl 999{rpc_arg}{split_arg_c} "
            f"--host 127.0.0.1 --port 8080",
        )
    )
    out.append(
        LaunchCommand(
            "llama.cpp",
            host,
            "benchmark the split (prompt 512, generate 128)",
            f"llama-bench -m {m} -ngl 999{rpc_arg}{split_arg_s} -p 512 -n 128 -o json",
        )
    )
    return out


def mlx_hostfile(plan: ClusterPlan, addresses: Mapping[str, str]) -> dict[str, object]:
    backend = "jaccl" if plan.link is not None and plan.link.transport == "rdma" else "ring"
    return {
        "backend": backend,
        "envs": [],
        "hosts": [{"ssh": f"{n.name}.local", "ips": [addresses[n.name]]} for n in plan.nodes],
    }


def mlx_commands(
    plan: ClusterPlan, addresses: Mapping[str, str], mlx_model: str = "MLX_MODEL"
) -> list[LaunchCommand]:
    hostfile = mlx_hostfile(plan, addresses)
    out: list[LaunchCommand] = []
    if hostfile["backend"] == "jaccl":
        hosts = ",".join(f"{n.name}.local" for n in plan.nodes)
        out.append(
            LaunchCommand(
                "mlx",
                "",
                "write hosts.json for RDMA (JACCL): discovers each node's RDMA devices",
                f"mlx.distributed_config --backend jaccl --hosts {hosts} --over thunderbolt "
                "--auto-setup --output hosts.json",
            )
        )
    else:
        out.append(
            LaunchCommand(
                "mlx",
                "",
                "hosts.json (ring backend over TCP/IP)",
                json.dumps(hostfile, indent=2),
            )
        )
    pipeline = " --pipeline" if plan.mode == "pipeline" else ""
    out.append(
        LaunchCommand(
            "mlx",
            plan.nodes[0].name,
            "generate across the cluster (mlx_lm must be at the same path on every node)",
            f"mlx.launch --hostfile hosts.json --backend {hostfile['backend']} -- "
            f"mlx_lm.generate --model {_shell_quote(mlx_model)}{pipeline} "
            f"--prompt 'Hello' --max-tokens 128",
        )
    )
    return out


def exo_commands(plan: ClusterPlan) -> list[LaunchCommand]:
    return [
        LaunchCommand(
            "exo",
            n.name,
            "start exo after installing it per its README (nodes on the same network "
            "discover each other; pick the model and "
            "the sharding in the dashboard on port 52415)",
            "exo",
        )
        for n in plan.nodes
    ]


def all_commands(
    plan: ClusterPlan,
    addresses: Mapping[str, str] | None = None,
    model_path: str = "MODEL.gguf",
    mlx_model: str = "MLX_MODEL",
) -> list[LaunchCommand]:
    names = [n.name for n in plan.nodes]
    addr = dict(default_addresses(names))
    if addresses:
        unknown = sorted(set(addresses) - set(names))
        if unknown:
            raise ValueError(
                f"address given for unknown node(s) {', '.join(unknown)}; nodes: {', '.join(names)}"
            )
        addr.update(addresses)
    out = llamacpp_commands(plan, addr, model_path)
    if all(n.is_apple_silicon for n in plan.nodes):  # MLX and exo run on Apple Silicon only
        out += mlx_commands(plan, addr, mlx_model) + exo_commands(plan)
    return out


def _range(plan: ClusterPlan, name: str) -> str:
    for n in plan.nodes:
        if n.name == name:
            return f"[{n.layers[0]}, {n.layers[1]})"
    return "?"
