"""K3s platform layout: which node gets which role and which service. Pure.

The shelf (learning track modules 02-05): used Intel Mac minis run Ubuntu and K3s; Apple Silicon
Macs run inference. Rules:

- Apple Silicon nodes are reserved for inference (Ollama or an MLX server), with or without a
  model: K3s has no macOS build, and a Linux VM on a Mac gets no Metal GPU, so a Mac inside K3s
  would be a CPU node that wastes its GPU. Inference runs natively on macOS; inside K3s the
  inference servers appear as a Service backed by an EndpointSlice with the Macs' addresses.
  With a model, the server goes on the Macs whose GPU budget holds it (the memory engine's
  verdict); a Mac that does not hold it stays reserved for smaller models and says so.
- The Intel nodes form the K3s cluster. One K3s server (control plane) on the strongest small
  node (most CPU cores, then the fastest clock, then the most memory): the API server, the
  scheduler and the datastore are what every other node waits on. With three or more K3s nodes
  the server is dedicated (tainted CriticalAddonsOnly=true:NoExecute, as the K3s docs suggest
  for dedicated servers); with fewer it also takes workloads.
- A dedicated Intel telemetry node (Prometheus, Loki, Tempo, Grafana and nothing else), as
  module 05 asks: labelled and tainted so only the telemetry pods, which tolerate the taint,
  land there, and the node that watches the others is not starved by them.
- Harbor (registry) and Argo CD (GitOps) on the workers, largest first, each onto the worker
  with the most free memory (spreads the load), each product kept on one node.
- Placement by requests against capacity = RAM (CPU cores) minus what K3s itself uses
  (platform_services.K3S_*). Anything that does not fit is reported with the numbers.

Roles can be pinned per node (`PlatformNode.pinned_roles`): control-plane, worker, telemetry,
registry, gitops, inference. A pin is honoured or refused with the reason (ValueError):
inference needs an Apple Silicon Mac that holds the model; telemetry is a node of its own; one
node per product. A Mac pinned to a K3s role joins K3s through a Linux VM (said so).
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
    ROLES,
    TELEMETRY,
    ServiceSpec,
    inference_service,
)

LABEL_PREFIX = "forgeplanner.io"
TELEMETRY_TAINT = {"key": f"{LABEL_PREFIX}/dedicated", "value": "telemetry", "effect": "NoSchedule"}
SERVER_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"}
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
RUNTIMES = ("ollama", "mlx", "llama.cpp")


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
    cpu_ghz: float | None = None  # base clock, ranks nodes of equal core count
    pinned_roles: tuple[str, ...] = ()  # roles the user pinned to this node


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


def _check_pins(nodes: Sequence[PlatformNode], model_id: str | None, quant: str | None) -> None:
    """Refuse the pins that cannot be honoured, with the reason."""
    owners: dict[str, list[str]] = {}
    for n in nodes:
        pins = set(n.pinned_roles)
        for r in n.pinned_roles:
            if r not in ROLES:
                raise ValueError(f"node {n.name}: role '{r}' unknown; valid: {', '.join(ROLES)}")
            owners.setdefault(r, []).append(n.name)
        if "inference" in pins:
            if not n.is_apple_silicon:
                raise ValueError(
                    f"node {n.name}: cannot pin inference: {n.machine} is not Apple Silicon "
                    "(inference runs on the Metal GPU of an Apple Silicon Mac)"
                )
            if len(pins) > 1:
                raise ValueError(
                    f"node {n.name}: inference runs natively on macOS, outside K3s; it cannot "
                    f"also take {', '.join(sorted(pins - {'inference'}))}"
                )
            if model_id is not None and n.model_verdict == VERDICT_NO:
                raise ValueError(
                    f"node {n.name}: cannot pin inference of {model_id} {quant}: it needs "
                    f"{fmt_gib(n.model_need_bytes)}, GPU limit {fmt_gib(n.model_limit_bytes)}"
                )
        if "telemetry" in pins and len(pins) > 1:
            raise ValueError(
                f"node {n.name}: telemetry is a dedicated node; it cannot also take "
                f"{', '.join(sorted(pins - {'telemetry'}))}"
            )
        if "worker" in pins and "telemetry" in pins:  # pragma: no cover - caught above
            raise ValueError(f"node {n.name}: telemetry is a dedicated node")
    for role in ("control-plane", "telemetry", "registry", "gitops"):
        if len(owners.get(role, [])) > 1:
            why = {
                "control-plane": "this layout runs one K3s server",
                "telemetry": "one dedicated telemetry node",
                "registry": "Harbor is kept on one node",
                "gitops": "Argo CD is kept on one node",
            }[role]
            raise ValueError(
                f"role {role} is pinned to {', '.join(owners[role])}: {why}; pin it to one node"
            )


def _strength(n: PlatformNode, order: int) -> tuple:
    """Strongest first when sorted descending: an Intel node before a Mac in a VM, then CPU
    cores, clock and memory; the earlier node on a tie."""
    return (not n.is_apple_silicon, n.cpu_cores or 0, n.cpu_ghz or 0.0, n.memory_bytes, -order)


def _refuse_pinned(product: str, node: _Bin, group: Sequence[ServiceSpec]) -> ValueError:
    cpu_txt = "unknown" if node.cpu_free is None else f"{node.cpu_free}m"
    return ValueError(
        f"node {node.node.name}: cannot pin {product}: it needs {_describe(group)}; "
        f"{node.node.name} has {cpu_txt} CPU and {fmt_gib(node.mem_free)} free after K3s "
        "and the services already there"
    )


def _place_k3s(
    pool: list[PlatformNode], server: PlatformNode, dedicated: bool, order: dict[str, int]
) -> tuple[PlatformNode | None, dict[str, str], list[Unplaced], bool]:
    """Telemetry node, Harbor and Argo CD over the K3s pool. Returns the telemetry node, the
    assignments, what could not be placed and whether telemetry fits its node."""
    pinned_tele = next((n for n in pool if "telemetry" in n.pinned_roles), None)
    product_pins = {
        prod: next((n for n in pool if role in n.pinned_roles), None)
        for prod, role in (("harbor", "registry"), ("argocd", "gitops"))
    }
    rest = [n for n in pool if n is not server]
    if pinned_tele is not None:
        candidates: list[PlatformNode | None] = [pinned_tele]
    else:
        # Only an Intel node without a pin can become the dedicated telemetry node.
        free = [n for n in rest if not n.pinned_roles and not n.is_apple_silicon]
        candidates = list(free) if free else [None]
    best: tuple | None = None
    for cand in candidates:
        workers = [n for n in rest if n is not cand]
        bins = {n.name: _Bin(n, *_capacity(n, False)) for n in workers}
        if not dedicated:
            bins = {server.name: _Bin(server, *_capacity(server, True)), **bins}
        placed: dict[str, str] = {}
        groups = []
        for product, group in _products()[1:]:
            pin = product_pins[product]
            if pin is None:
                groups.append((product, group))
                continue
            b = bins.get(pin.name)
            if b is None:  # the pinned node is the dedicated server
                b = _Bin(pin, *_capacity(pin, True))
                bins[pin.name] = b
            if not b.fits(group):
                raise _refuse_pinned(product, b, group)
            b.take(group)
            placed.update({s.id: pin.name for s in group})
        # Unpinned products go to the workers (a pinned server takes none it was not given).
        open_bins = [
            b
            for b in bins.values()
            if b.node is not server or not dedicated or "worker" in b.node.pinned_roles
        ]
        more, missing = _pack(groups, open_bins)
        placed.update(more)
        tele_ok = cand is not None and _Bin(cand, *_capacity(cand, False)).fits(TELEMETRY)
        score = (
            -(len(missing) + (0 if tele_ok else 1)),
            cand.memory_bytes if cand is not None else 0,
            -order[cand.name] if cand is not None else 0,
        )
        if best is None or score > best[0]:
            best = (score, cand, placed, missing, tele_ok)
    assert best is not None
    _, tele, placed, missing, tele_ok = best
    return tele, placed, list(missing), tele_ok


def plan_platform(
    nodes: Sequence[PlatformNode],
    model_id: str | None = None,
    quant: str | None = None,
    runtime: str = "ollama",
) -> PlatformLayout:
    _check(nodes, runtime)
    _check_pins(nodes, model_id, quant)
    order = {n.name: i for i, n in enumerate(nodes)}
    notes: list[str] = [
        "host OS memory is not reserved in these numbers (no sourced figure for Ubuntu on "
        "these machines): keep some headroom on every node",
    ]
    unplaced: list[Unplaced] = []
    assignments: dict[str, str] = {}
    services: list[ServiceSpec] = list(TELEMETRY + REGISTRY + GITOPS)
    k3s_roles = set(ROLES) - {"inference"}

    # 1. Apple Silicon nodes are reserved for inference unless pinned to a K3s role.
    reserved = [n for n in nodes if n.is_apple_silicon and not (set(n.pinned_roles) & k3s_roles)]
    serving: list[PlatformNode] = []
    for n in reserved:
        if model_id is None or (n.model_verdict is not None and n.model_verdict != VERDICT_NO):
            serving.append(n)
            svc = inference_service(runtime, n.name)
            services.append(svc)
            assignments[svc.id] = n.name
        if model_id is not None and n.model_verdict == VERDICT_RAISED:
            notes.append(
                f"{n.name} holds {model_id} {quant} only with a raised GPU limit "
                f"(needs {fmt_gib(n.model_need_bytes)}, default limit "
                f"{fmt_gib(n.model_limit_bytes)}): see `forgeplanner estimate`"
            )
    if model_id is not None and not serving:
        apple = [n for n in nodes if n.is_apple_silicon]
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

    # 2. The K3s pool: the Intel nodes and the Macs pinned to a K3s role.
    reserved_names = {n.name for n in reserved}
    pool = [n for n in nodes if n.name not in reserved_names]
    telemetry_node: PlatformNode | None = None
    server: PlatformNode | None = next((n for n in pool if "control-plane" in n.pinned_roles), None)
    if server is None:
        unpinned = [n for n in pool if not n.pinned_roles]
        if unpinned:
            server = max(unpinned, key=lambda n: _strength(n, order[n.name]))
        elif pool:
            raise ValueError(
                "no node is left for the K3s control plane: every K3s node ("
                + ", ".join(n.name for n in pool)
                + ") is pinned to another role; pin control-plane to one of them"
            )
    dedicated = (
        server is not None
        and len(pool) >= 3
        and not ({"worker", "registry", "gitops"} & set(server.pinned_roles))
    )
    if server is None:
        for product, _group in _products():
            why = "every node is an Apple Silicon Mac reserved for inference"
            unplaced.append(Unplaced(product, f"no node is left for K3s: {why}"))
    else:
        telemetry_node, placed, missing, tele_ok = _place_k3s(pool, server, dedicated, order)
        assignments.update(placed)
        unplaced.extend(missing)
        if telemetry_node is None:
            intel = [n.name for n in pool]
            unplaced.append(
                Unplaced(
                    "telemetry",
                    f"a dedicated telemetry node needs an Intel K3s node of its own; only "
                    f"{len(pool)} K3s node(s) ({', '.join(intel)}), taken by the control "
                    "plane and pinned roles",
                )
            )
        elif not tele_ok:
            _cpu_free, mem = _capacity(telemetry_node, False)
            if "telemetry" in telemetry_node.pinned_roles:
                raise ValueError(
                    f"node {telemetry_node.name}: cannot pin telemetry: Prometheus, Loki, "
                    f"Tempo and Grafana request {_describe(TELEMETRY)}; it has "
                    f"{fmt_gib(mem)} after K3s"
                )
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
        if dedicated:
            notes.append(
                f"{server.name} is a dedicated K3s server (taint CriticalAddonsOnly=true:"
                "NoExecute): workloads go to the agents"
            )
        vm = [n.name for n in pool if n.is_apple_silicon]
        if vm:
            notes.append(
                "K3s has no macOS build: " + ", ".join(vm) + " (pinned to a K3s role) would "
                "run K3s inside a Linux VM (e.g. Lima), which gets no Metal GPU"
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
    serving_names = {n.name for n in serving}
    for n in nodes:
        svcs = by_node.get(n.name, [])
        roles: list[str] = []
        labels: dict[str, str] = {}
        taints: list[dict[str, str]] = []
        k3s: str | None = None
        node_notes: list[str] = []
        if n.name in reserved_names:
            roles.append("inference")
            labels[f"{LABEL_PREFIX}/inference"] = "true"
            node_notes.append(
                f"runs {runtime} natively on macOS (Metal); reached from K3s through the "
                "inference Service"
            )
            if n.name not in serving_names:
                node_notes.append(
                    f"does not hold {model_id} {quant} (needs {fmt_gib(n.model_need_bytes)}, "
                    f"GPU limit {fmt_gib(n.model_limit_bytes)}): kept for smaller models"
                )
        elif server is not None:
            k3s = "server" if n is server else "agent"
            if n is server:
                roles.append("control-plane")
                if dedicated:
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
            if n.pinned_roles:
                node_notes.append("pinned: " + "+".join(n.pinned_roles))
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
                + ((n.model_need_bytes or 0) if n.name in serving_names else 0),
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
