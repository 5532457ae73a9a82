"""Runtime version strings as sortable keys.

llama.cpp numbers its builds ("b4567", the count of commits on master; release tags carry the
same number); mlx-lm, Ollama and LM Studio use dotted versions ("0.26.3", "0.12.6").
"""

from __future__ import annotations

import re

from forgeplanner.domain.runtime import Runtime

_BUILD = re.compile(r"^\s*b?(\d+)\s*$", re.IGNORECASE)
_DOTTED = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def version_key(runtime: Runtime | str, version: str) -> tuple[int, ...]:
    """(build,) for llama.cpp builds, the dotted numbers otherwise; ValueError when the string
    is not a version of that runtime."""
    rt = Runtime.parse(runtime)
    text = str(version).strip()
    if rt in (Runtime.LLAMA_CPP, Runtime.LMSTUDIO_GGUF):
        m = _BUILD.match(text)
        if m and (rt is Runtime.LLAMA_CPP or text.lower().startswith("b")):
            return (int(m.group(1)),)
    m = _DOTTED.match(text)
    if m:
        return tuple(int(p) for p in m.group(1).split("."))
    raise ValueError(f"runtime version '{version}' is not a {rt.value} version")
