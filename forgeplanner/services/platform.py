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

PLATFORM_RUNTIMES: tuple[Runtime, ...] = (Runtime.OLLAMA, Runtime.MLX)


class PlatformError(ForgePlannerError):
    """A platform layout that cannot be made as asked."""


@dataclass(frozen=True, slots=True)
class ShelfNode:
    """One machine on the shelf: its Kubernetes node name and catalog configuration."""

    name: str
    config_id: str

    def __post_init__(self) -> None:
        if not self.name.strip() or not self.config_id.strip():
            raise PlatformError(
                f"node {self.name!r}={self.config_id!r}: a node needs a name and a configuration"
            )


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
