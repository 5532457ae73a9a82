"""K3s platform layout: which node gets which role and which service. Pure.

The shelf (learning track modules 02-05): used Intel Mac minis run Ubuntu and K3s; Apple Silicon
Macs run inference. Rules:

- Inference (Ollama or an MLX server) goes only on Apple Silicon nodes whose GPU budget holds
  the chosen model (the memory engine's verdict for that machine). It runs natively on macOS:
  K3s has no macOS build, and a Linux VM on a Mac gets no Metal GPU, so inside K3s the
  inference servers appear as a Service backed by an EndpointSlice with the Mac's address.
  Those Macs are therefore not K3s nodes.
- The other nodes form the K3s cluster. One K3s server (control plane), preferring Intel
  nodes and the smallest one (the big ones are worth more as workers). With three or more K3s
  nodes the server is dedicated (tainted CriticalAddonsOnly=true:NoExecute, as the K3s docs
  suggest for dedicated servers); with fewer it also takes workloads.
- A dedicated telemetry node (Prometheus, Loki, Tempo, Grafana and nothing else): labelled
  and tainted so only the telemetry pods, which tolerate the taint, land there.
- Harbor (registry) and Argo CD (GitOps) on the workers, largest first, each onto the worker
  with the most free memory (spreads the load), each product kept on one node.
- Placement by requests against capacity = RAM (CPU cores) minus what K3s itself uses
  (platform_services.K3S_*). Anything that does not fit is reported with the numbers.

Apple Silicon nodes that do not hold the model can still be K3s nodes, through a Linux VM; they
come after the Intel nodes and the layout says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from forgeplanner.domain.estimates import VERDICT_NO, VERDICT_RAISED
from forgeplanner.domain.units import fmt_gib
from forgeplanner.engine.platform_services import (
    GITOPS,
    K3S_AGENT_CPU_MILLICORES,
    K3S_AGENT_MEMORY_BYTES,
    K3S_SERVER_CPU_MILLICORES,
    K3S_SERVER_MEMORY_BYTES,
    REGISTRY,
    TELEMETRY,
    ServiceSpec,
    inference_service,
)

LABEL_PREFIX = "forgeplanner.io"
TELEMETRY_TAINT = {"key": f"{LABEL_PREFIX}/dedicated", "value": "telemetry", "effect": "NoSchedule"}
SERVER_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"}
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
RUNTIMES = ("ollama", "mlx")


@dataclass(frozen=True, slots=True)
class PlatformNode:
    """One machine on the shelf, from a catalog configuration."""

    name: str
    config_id: str
    machine: str
    is_apple_silicon: bool
    cpu_cores: int | None
    memory_bytes: int
    idle_w: float | None = None
    max_w: float | None = None
    idle_btu_h: float | None = None
    max_btu_h: float | None = None
    # The chosen model on this machine (memory engine): verdict, need and GPU limit.
    model_verdict: str | None = None
    model_need_bytes: int | None = None
    model_limit_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class NodeLayout:
    name: str
    config_id: str
    machine: str
    roles: tuple[str, ...]
    k3s: str | None  # "server" | "agent" | None (not a K3s node)
    labels: dict[str, str]
    taints: tuple[dict[str, str], ...]
    services: tuple[str, ...]
    cpu_request_millicores: int
    memory_request_bytes: int
    cpu_capacity_millicores: int | None
    memory_capacity_bytes: int
    idle_w: float | None
    max_w: float | None
    idle_btu_h: float | None
    max_btu_h: float | None
    via_vm: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "config_id": self.config_id,
            "machine": self.machine,
            "roles": list(self.roles),
            "k3s": self.k3s,
            "labels": dict(self.labels),
            "taints": [dict(t) for t in self.taints],
            "services": list(self.services),
            "requests": {
                "cpu_millicores": self.cpu_request_millicores,
                "memory_bytes": self.memory_request_bytes,
            },
            "capacity": {
                "cpu_millicores": self.cpu_capacity_millicores,
                "memory_bytes": self.memory_capacity_bytes,
            },
            "power_w": {"idle": self.idle_w, "max": self.max_w},
            "heat_btu_h": {"idle": self.idle_btu_h, "max": self.max_btu_h},
            "via_vm": self.via_vm,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Unplaced:
    service: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"service": self.service, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ShelfPower:
    idle_w: float | None
    max_w: float | None
    idle_btu_h: float | None
    max_btu_h: float | None
    unknown: tuple[str, ...]  # nodes whose figures are unknown (totals then unknown)

    def to_dict(self) -> dict[str, object]:
        return {
            "idle_w": self.idle_w,
            "max_w": self.max_w,
            "idle_btu_h": self.idle_btu_h,
            "max_btu_h": self.max_btu_h,
            "unknown": list(self.unknown),
        }


@dataclass(frozen=True, slots=True)
class PlatformLayout:
    nodes: tuple[NodeLayout, ...]
    assignments: dict[str, str]  # service id -> node name
    services: tuple[ServiceSpec, ...]  # every service placed or not
    unplaced: tuple[Unplaced, ...]
    power: ShelfPower
    model_id: str | None
    quant: str | None
    runtime: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def node(self, name: str) -> NodeLayout:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def server(self) -> NodeLayout | None:
        return next((n for n in self.nodes if n.k3s == "server"), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "assignments": dict(self.assignments),
            "unplaced": [u.to_dict() for u in self.unplaced],
            "power": self.power.to_dict(),
            "model": self.model_id,
            "quant": self.quant,
            "runtime": self.runtime,
            "services": [s.to_dict() for s in self.services],
            "notes": list(self.notes),
        }


def _cpu(s: ServiceSpec) -> int:
    return s.cpu_millicores or 0


def _mem(s: ServiceSpec) -> int:
    return s.memory_bytes or 0


def _sum_cpu(services: Sequence[ServiceSpec]) -> int:
    return sum(_cpu(s) for s in services)


def _sum_mem(services: Sequence[ServiceSpec]) -> int:
    return sum(_mem(s) for s in services)


@dataclass
class _Bin:
    node: PlatformNode
    cpu_free: int | None
    mem_free: int
    services: list[ServiceSpec] = field(default_factory=list)

    def fits(self, group: Sequence[ServiceSpec]) -> bool:
        if _sum_mem(group) > self.mem_free:
            return False
        return self.cpu_free is None or _sum_cpu(group) <= self.cpu_free

    def take(self, group: Sequence[ServiceSpec]) -> None:
        self.services.extend(group)
        self.mem_free -= _sum_mem(group)
        if self.cpu_free is not None:
            self.cpu_free -= _sum_cpu(group)


def _capacity(node: PlatformNode, server: bool) -> tuple[int | None, int]:
    cpu = None if node.cpu_cores is None else node.cpu_cores * 1000
    res_cpu = K3S_SERVER_CPU_MILLICORES if server else K3S_AGENT_CPU_MILLICORES
    res_mem = K3S_SERVER_MEMORY_BYTES if server else K3S_AGENT_MEMORY_BYTES
    return (None if cpu is None else cpu - res_cpu), node.memory_bytes - res_mem


def _describe(group: Sequence[ServiceSpec]) -> str:
    cpu = _sum_cpu(group)
    return f"{cpu}m CPU and {fmt_gib(_sum_mem(group))}"


def _pack(
    groups: Sequence[tuple[str, tuple[ServiceSpec, ...]]], bins: list[_Bin]
) -> tuple[dict[str, str], list[Unplaced]]:
    """Largest groups first (by memory), each onto the node with the most free memory that
    fits it (worst-fit decreasing), so products spread over the workers."""
    placed: dict[str, str] = {}
    unplaced: list[Unplaced] = []
    for product, group in sorted(groups, key=lambda g: -_sum_mem(g[1])):
        if not bins:
            unplaced.append(
                Unplaced(product, f"{product} needs {_describe(group)}; there is no worker node")
            )
            continue
        fitting = [b for b in bins if b.fits(group)]
        # The roomiest node that fits (worst fit): spreads the products over the workers.
        target = max(fitting, key=lambda b: b.mem_free) if fitting else None
        if target is None:
            best = max(bins, key=lambda b: b.mem_free)
            cpu_txt = "unknown" if best.cpu_free is None else f"{best.cpu_free}m"
            unplaced.append(
                Unplaced(
                    product,
                    f"{product} needs {_describe(group)}; the roomiest worker, "
                    f"{best.node.name}, has {cpu_txt} CPU and {fmt_gib(best.mem_free)} free "
                    "after K3s and the services already there",
                )
            )
            continue
        target.take(group)
        for s in group:
            placed[s.id] = target.node.name
    return placed, unplaced


def shelf_power(nodes: Sequence[PlatformNode]) -> ShelfPower:
    def total(attr: str) -> float | None:
        vals = [getattr(n, attr) for n in nodes]
        return None if any(v is None for v in vals) else float(sum(vals))

    unknown = tuple(
        n.name
        for n in nodes
        if any(getattr(n, a) is None for a in ("idle_w", "max_w", "idle_btu_h", "max_btu_h"))
    )
    return ShelfPower(
        total("idle_w"), total("max_w"), total("idle_btu_h"), total("max_btu_h"), unknown
    )


def _check(nodes: Sequence[PlatformNode], runtime: str) -> None:
    if not nodes:
        raise ValueError("a platform layout needs at least one node")
    if runtime not in RUNTIMES:
        raise ValueError(f"inference runtime '{runtime}' unknown; valid: {', '.join(RUNTIMES)}")
    seen: set[str] = set()
    for n in nodes:
        if not _DNS1123.match(n.name):
            raise ValueError(
                f"node name '{n.name}' is not a valid Kubernetes node name: use lower-case "
                "letters, digits and '-', at most 63 characters, starting and ending with a "
                "letter or digit"
            )
        if n.name in seen:
            raise ValueError(f"node name '{n.name}' is used twice")
        seen.add(n.name)
        if n.memory_bytes <= 0:
            raise ValueError(f"node {n.name}: memory must be positive, got {n.memory_bytes} bytes")


def plan_platform(
    nodes: Sequence[PlatformNode],
    model_id: str | None = None,
    quant: str | None = None,
    runtime: str = "ollama",
) -> PlatformLayout:
    _check(nodes, runtime)
    notes: list[str] = [
        "host OS memory is not reserved in these numbers (no sourced figure for Ubuntu on "
        "these machines): keep some headroom on every node",
    ]
    unplaced: list[Unplaced] = []
    assignments: dict[str, str] = {}
    services: list[ServiceSpec] = list(TELEMETRY + REGISTRY + GITOPS)

    # 1. inference on the Apple Silicon nodes that hold the model
    inference_nodes: list[PlatformNode] = []
    if model_id is not None:
        apple = [n for n in nodes if n.is_apple_silicon]
        inference_nodes = [
            n for n in apple if n.model_verdict is not None and n.model_verdict != VERDICT_NO
        ]
        for n in inference_nodes:
            svc = inference_service(runtime, n.name)
            services.append(svc)
            assignments[svc.id] = n.name
            if n.model_verdict == VERDICT_RAISED:
                notes.append(
                    f"{n.name} holds {model_id} {quant} only with a raised GPU limit "
                    f"(needs {fmt_gib(n.model_need_bytes)}, default limit "
                    f"{fmt_gib(n.model_limit_bytes)}): see `forgeplanner estimate`"
                )
        if not inference_nodes:
            if not apple:
                why = "there is no Apple Silicon node"
            else:
                parts = [
                    f"{n.name} needs {fmt_gib(n.model_need_bytes)}, GPU limit "
                    f"{fmt_gib(n.model_limit_bytes)}"
                    for n in apple
                ]
                why = "no Apple Silicon node holds it: " + "; ".join(parts)
            unplaced.append(Unplaced(f"inference ({runtime})", f"{model_id} {quant}: {why}"))

    # 2. the K3s pool: Intel first, then Apple Silicon (via a Linux VM), smallest first
    inference_names = {n.name for n in inference_nodes}
    pool = sorted(
        (n for n in nodes if n.name not in inference_names),
        key=lambda n: (n.is_apple_silicon, n.memory_bytes, nodes.index(n)),
    )
    telemetry_node: PlatformNode | None = None
    server: PlatformNode | None = pool[0] if pool else None
    if server is None:
        for product, _group in _products():
            unplaced.append(Unplaced(product, "no node is left for K3s: every node runs inference"))
    else:
        rest = pool[1:]
        dedicated_server = len(pool) >= 3
        best: tuple | None = None
        candidates: list[PlatformNode | None] = list(rest) if rest else [None]
        for cand in candidates:
            workers = [n for n in rest if n is not cand]
            trial_bins = [_Bin(n, *_capacity(n, False)) for n in workers]
            if not dedicated_server:
                trial_bins.insert(0, _Bin(server, *_capacity(server, True)))
            placed, missing = _pack(_products()[1:], trial_bins)
            tele_ok = cand is not None and _Bin(cand, *_capacity(cand, False)).fits(TELEMETRY)
            score = (
                -(len(missing) + (0 if tele_ok else 1)),
                cand.memory_bytes if cand is not None else 0,
            )
            if best is None or score > best[0]:
                best = (score, cand, placed, missing, tele_ok)
        assert best is not None
        _, telemetry_node, placed, missing, tele_ok = best
        assignments.update(placed)
        unplaced.extend(missing)
        if telemetry_node is None:
            unplaced.append(
                Unplaced(
                    "telemetry",
                    f"a dedicated telemetry node needs a K3s node of its own; only "
                    f"{len(pool)} K3s node(s) ({', '.join(n.name for n in pool)}), "
                    "taken by the control plane",
                )
            )
        elif not tele_ok:
            _cpu_free, mem = _capacity(telemetry_node, False)
            unplaced.append(
                Unplaced(
                    "telemetry",
                    f"Prometheus, Loki, Tempo and Grafana request {_describe(TELEMETRY)}; "
                    f"{telemetry_node.name} has {mem and fmt_gib(mem)} after K3s",
                )
            )
            telemetry_node = None
        else:
            for s in TELEMETRY:
                assignments[s.id] = telemetry_node.name
        if dedicated_server:
            notes.append(
                f"{server.name} is a dedicated K3s server (taint CriticalAddonsOnly=true:"
                "NoExecute): workloads go to the agents"
            )
        vm = [n.name for n in pool if n.is_apple_silicon]
        if vm:
            notes.append(
                "K3s has no macOS build: " + ", ".join(vm) + " would run K3s inside a Linux "
                "VM (e.g. Lima), which gets no Metal GPU"
            )
        if any(s.cpu_millicores is None or s.memory_bytes is None for s in TELEMETRY):
            notes.append(
                "Loki and Tempo set no resource requests upstream; on the dedicated telemetry "
                "node they use what Prometheus and Grafana leave"
            )

    # 3. node records
    out_nodes: list[NodeLayout] = []
    by_node: dict[str, list[ServiceSpec]] = {}
    svc_by_id = {s.id: s for s in services}
    for sid, node_name in assignments.items():
        by_node.setdefault(node_name, []).append(svc_by_id[sid])
    for n in nodes:
        svcs = by_node.get(n.name, [])
        roles: list[str] = []
        labels: dict[str, str] = {}
        taints: list[dict[str, str]] = []
        k3s: str | None = None
        node_notes: list[str] = []
        if n.name in inference_names:
            roles.append("inference")
            labels[f"{LABEL_PREFIX}/inference"] = "true"
            node_notes.append(
                f"runs {runtime} natively on macOS (Metal); reached from K3s through the "
                "inference Service"
            )
        elif server is not None:
            k3s = "server" if n is server else "agent"
            if n is server:
                roles.append("control-plane")
                if len(pool) >= 3:
                    taints.append(dict(SERVER_TAINT))
                else:
                    roles.append("worker")
            elif n is telemetry_node:
                roles.append("telemetry")
                labels[f"{LABEL_PREFIX}/telemetry"] = "true"
                taints.append(dict(TELEMETRY_TAINT))
            else:
                roles.append("worker")
            role_set = {s.role for s in svcs}
            for r in ("registry", "gitops"):
                if r in role_set:
                    roles.append(r)
                    labels[f"{LABEL_PREFIX}/{r}"] = "true"
            if n.is_apple_silicon:
                node_notes.append("K3s in a Linux VM (no Metal GPU inside the VM)")
        if k3s:
            cpu_cap, mem_cap = _capacity(n, k3s == "server")
        else:
            cpu_cap = None if n.cpu_cores is None else n.cpu_cores * 1000
            mem_cap = n.memory_bytes
        out_nodes.append(
            NodeLayout(
                name=n.name,
                config_id=n.config_id,
                machine=n.machine,
                roles=tuple(roles),
                k3s=k3s,
                labels=labels,
                taints=tuple(taints),
                services=tuple(s.id for s in svcs),
                cpu_request_millicores=_sum_cpu(svcs),
                memory_request_bytes=_sum_mem(svcs)
                + ((n.model_need_bytes or 0) if n.name in inference_names else 0),
                cpu_capacity_millicores=cpu_cap,
                memory_capacity_bytes=mem_cap,
                idle_w=n.idle_w,
                max_w=n.max_w,
                idle_btu_h=n.idle_btu_h,
                max_btu_h=n.max_btu_h,
                via_vm=bool(k3s and n.is_apple_silicon),
                notes=tuple(node_notes),
            )
        )
    return PlatformLayout(
        nodes=tuple(out_nodes),
        assignments=assignments,
        services=tuple(services),
        unplaced=tuple(unplaced),
        power=shelf_power(nodes),
        model_id=model_id,
        quant=quant,
        runtime=runtime,
        notes=tuple(notes),
    )


def _products() -> list[tuple[str, tuple[ServiceSpec, ...]]]:
    return [("telemetry", TELEMETRY), ("harbor", REGISTRY), ("argocd", GITOPS)]
