"""Shelves for the platform tests, built as `platform layout --node ...` builds them."""

from __future__ import annotations

from forgeplanner.services.platform import (
    PlatformRequest,
    PlatformResult,
    ShelfNode,
    build_platform,
)


def build(
    nodes: list[str], model: str | None = None, quant: str | None = None, runtime: str = "ollama"
) -> PlatformResult:
    """`NAME=CONFIG_ID[:ROLE[+ROLE...]]` texts -> the laid-out platform."""
    request = PlatformRequest(tuple(ShelfNode.parse(n) for n in nodes), model, quant, runtime)
    return build_platform(request)
