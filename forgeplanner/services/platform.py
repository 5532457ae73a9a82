"""The K3s shelf: node roles, service placement, power, heat, install commands and manifests.

The glue between the catalog, the model database, the memory engine and the pure layout
(`forgeplanner.engine.platform_layout`); `forgeplanner platform layout`, the Platform view and
plans call `build_platform`. Only `write_manifests` touches files: every file is written to a
temporary name in the directory first and renamed into place (os.replace) once all are written.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError, NotFoundError

if TYPE_CHECKING:
    from forgeplanner.engine.platform_layout import PlatformLayout

# llama.cpp's llama-server: the one whose /metrics Prometheus scrapes (tokens/s, queue)
PLATFORM_RUNTIMES: tuple[Runtime, ...] = (Runtime.OLLAMA, Runtime.MLX, Runtime.LLAMA_CPP)


class PlatformError(ForgePlannerError):
    """A platform layout that cannot be made as asked."""


@dataclass(frozen=True, slots=True)
class ShelfNode:
    """One machine on the shelf: its Kubernetes node name, catalog configuration and the
    roles the user pins to it (empty: the layout decides)."""

    name: str
    config_id: str
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.config_id.strip():
            raise PlatformError(
                f"node {self.name!r}={self.config_id!r}: a node needs a name and a configuration"
            )

    @classmethod
    def parse(cls, text: str) -> ShelfNode:
        """`NAME=CONFIG_ID[:ROLE[+ROLE...]]` (the CLI's --node, the view's node list)."""
        from forgeplanner.platform.pins import PinError, parse_node_arg

        try:
            return cls(*parse_node_arg(text))
        except PinError as exc:
            raise PlatformError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class PlatformRequest:
    """The shelf to lay out and, optionally, the model its inference nodes serve, under
    `runtime` (a runtime name is accepted and parsed)."""

    nodes: tuple[ShelfNode, ...]
    model_id: str | None = None
    quant: str | None = None
    runtime: Runtime = Runtime.OLLAMA
    context: int = 8192
    manifests_dir: str = "DIR"  # where the install commands say the manifests are

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
        if self.runtime not in PLATFORM_RUNTIMES:
            raise PlatformError(
                f"runtime '{self.runtime}' is not served on the K3s shelf; valid: "
                f"{', '.join(PLATFORM_RUNTIMES)}"
            )
        if self.context <= 0:
            raise PlatformError(
                f"--context must be a positive number of tokens, got {self.context}"
            )
        if (self.model_id is None) != (self.quant is None):
            raise PlatformError("--model and --quant go together")
        if not self.nodes:
            raise PlatformError("give at least one --node NAME=CONFIG_ID")


@dataclass(frozen=True, slots=True)
class PlatformResult:
    layout: PlatformLayout
    files: dict[str, list[dict[str, Any]]]  # manifest file name -> objects
    commands: tuple[Any, ...]  # platform.k3s.NodeCommand
    addresses: dict[str, str]

    def yaml_files(self) -> dict[str, str]:
        from forgeplanner.platform.manifests import to_yaml

        return {name: to_yaml(objs) for name, objs in self.files.items()}

    def to_dict(self) -> dict[str, Any]:
        d = self.layout.to_dict()
        d["addresses"] = dict(self.addresses)
        d["commands"] = [c.to_dict() for c in self.commands]
        d["manifests"] = sorted(self.files)
        return d


def build_platform(request: PlatformRequest, *, catalog: Any = None) -> PlatformResult:
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.fit import fit
    from forgeplanner.engine.platform_layout import PlatformNode, plan_platform
    from forgeplanner.host import host_from_config
    from forgeplanner.platform.k3s import install_commands, suggested_addresses
    from forgeplanner.platform.manifests import render_manifests
    from forgeplanner.platform.pins import cpu_clock_ghz

    if catalog is None:
        from catalog import load_catalog

        catalog = load_catalog()
    model = None
    options = None
    if request.model_id is not None:
        from forgeplanner.services.models import find_model

        model = find_model(request.model_id)
        try:
            options = RunOptions(context=request.context, runtime=request.runtime)
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
    nodes = []
    for node in request.nodes:
        name, config_id = node.name.strip(), node.config_id.strip()
        if config_id not in catalog.configs:
            raise NotFoundError("machine configuration", config_id, sorted(catalog.configs))
        cfg = catalog.configs[config_id]
        chip = catalog.chips[cfg.chip_id]
        verdict = need = limit = None
        if model is not None and chip.is_apple_silicon:
            try:
                fr = fit(model, request.quant, host_from_config(config_id), options)
            except ValueError as exc:
                raise PlatformError(str(exc)) from None
            verdict, need, limit = (
                fr.verdict,
                fr.memory.total_bytes,
                fr.budget.gpu_limit_bytes,
            )
        nodes.append(
            PlatformNode(
                name=name,
                config_id=config_id,
                machine=cfg.machine,
                is_apple_silicon=chip.is_apple_silicon,
                cpu_cores=chip.cpu_cores.value,
                memory_bytes=cfg.memory_bytes,
                idle_w=cfg.idle_w.value,
                max_w=cfg.max_w.value,
                idle_btu_h=cfg.idle_btu_h.value,
                max_btu_h=cfg.max_btu_h.value,
                model_verdict=verdict,
                model_need_bytes=need,
                model_limit_bytes=limit,
                cpu_ghz=cpu_clock_ghz(chip.name),  # the control plane's tie-break
                pinned_roles=node.roles,
            )
        )
    try:
        layout = plan_platform(nodes, request.model_id, request.quant, request.runtime)
    except ValueError as exc:
        raise PlatformError(str(exc)) from None
    addresses = suggested_addresses([n.name for n in nodes])
    files = render_manifests(layout, addresses)
    commands = install_commands(layout, addresses, manifests_dir=request.manifests_dir)
    return PlatformResult(layout, files, tuple(commands), addresses)


def write_manifests(result: PlatformResult, directory: Path) -> list[Path]:
    """Write every manifest file atomically: all temporaries first, then the renames."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = result.yaml_files()
    temps: list[tuple[str, Path]] = []
    try:
        for name, text in texts.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            temps.append((name, Path(tmp)))
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; manifests are not secret
    except BaseException:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    written = []
    for name, tmp in temps:
        target = directory / name
        os.replace(tmp, target)
        written.append(target)
    return written


def mac_expectations(layout: PlatformLayout, context: int = 8192) -> dict[str, Any]:
    """What the plan expects of each inference Mac, for the alert rules and dashboards
    (`forgeplanner.platform.observability.MacExpectation` per node): the GPU wired limit
    (engine.budget) and, with a model, the estimated decode/prefill tokens/s (engine.estimate)."""
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.budget import gpu_budget
    from forgeplanner.engine.estimate import estimate
    from forgeplanner.host import host_from_config
    from forgeplanner.platform.observability import MacExpectation

    model = None
    if layout.model_id is not None:
        from forgeplanner.services.models import find_model

        model = find_model(layout.model_id)
    serving = {layout.assignments[s.id] for s in layout.services if s.role == "inference"
               and s.id in layout.assignments}  # fmt: skip
    out: dict[str, MacExpectation] = {}
    for n in layout.nodes:
        if "inference" not in n.roles:
            continue
        host = host_from_config(n.config_id)
        limit = gpu_budget(host).gpu_limit_bytes
        decode = prefill = None
        if model is not None and n.name in serving:
            try:
                est = estimate(
                    model, layout.quant, host, RunOptions(context=context, runtime=layout.runtime)
                )
            except ValueError:
                est = None  # e.g. a GGUF quantization asked of MLX: no estimate, no rule
            if est is not None and est.speed is not None:
                decode, prefill = est.speed.decode_tps, est.speed.prefill_tps
        out[n.name] = MacExpectation(n.name, limit, decode, prefill)
    return out


def write_gitops(
    result: PlatformResult,
    directory: str,
    *,
    context: int = 8192,
    policy_path: str | None = None,
    repo_url: str | None = None,
    registry_host: str | None = None,
) -> list[Path]:
    """`platform layout ... --gitops DIR`: the GitOps repository of a built platform
    (forgeplanner.platform.gitops), with the gate policy as admission policies, written
    atomically."""
    from forgeplanner.platform.admission import admission_objects
    from forgeplanner.platform.gitops import GitOpsOptions, render_repository, write_repository

    opts = GitOpsOptions()
    if repo_url:
        opts = GitOpsOptions(repo_url=repo_url, registry_host=opts.registry_host)
    if registry_host:
        opts = GitOpsOptions(repo_url=opts.repo_url, registry_host=registry_host)
    policy = None
    if policy_path:
        from forgeplanner.governance.policy import load_policy

        policy = load_policy(policy_path)
    exp = mac_expectations(result.layout, context)
    objs = admission_objects(policy, result.layout, opts.registry_host, exp)
    files = render_repository(result.layout, result.addresses, exp, opts, objs)
    try:
        return write_repository(files, directory)
    except OSError as exc:
        raise PlatformError(f"cannot write the GitOps repository to {directory}: {exc}") from None
