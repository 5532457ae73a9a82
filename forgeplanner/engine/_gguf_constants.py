"""The official `gguf` package's constants module, without the rest of the package.

The engine needs only ggml's block layouts (`GGML_QUANT_SIZES`) and type names. `import gguf`
runs the package's `__init__`, which imports its reader, writer, metadata and vocabulary code
and through them yaml and more: a third of the CLI's start-up for two tables. `gguf/constants.py`
imports only the standard library, so it is loaded on its own, under its real name
`gguf.constants`: when the whole package is imported later (to read a GGUF file), Python finds
that module already in `sys.modules` and the package uses the same object, so the enum members
are identical either way. When `gguf` is already imported, its module is used as is.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def _constants() -> ModuleType:
    name = "gguf.constants"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("gguf")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the gguf package is not installed (pip install gguf)")
    location = next(iter(spec.submodule_search_locations))
    sub = importlib.util.spec_from_file_location(name, f"{location}/constants.py")
    if sub is None or sub.loader is None:  # pragma: no cover - a broken installation
        raise ImportError(f"gguf/constants.py not found in {location}")
    module = importlib.util.module_from_spec(sub)
    sys.modules[name] = module
    try:
        sub.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


_c = _constants()
GGML_QUANT_SIZES = _c.GGML_QUANT_SIZES
GGMLQuantizationType = _c.GGMLQuantizationType
