"""One vocabulary for every view: verdict words, machine names, runtimes, benchmark metrics.

People read machine names, not catalog ids; a verdict reads the same in the Fit table, the
Recommend table, the plan and the Models badges; no command-line flag appears in the GUI.
"""

from __future__ import annotations

import re
from typing import Any

from forgeplanner.domain.estimates import VERDICT_FITS, VERDICT_NO, VERDICT_RAISED
from forgeplanner.domain.runtime import Runtime
from forgeplanner.export.tables import RUN_METRICS

VERDICT_WORDS: dict[str, str] = {
    VERDICT_FITS: "Fits",
    VERDICT_RAISED: "Fits with a raised GPU limit",
    VERDICT_NO: "Does not fit",
}
# Short forms for narrow cells (badges, table columns): same meaning, same order.
VERDICT_SHORT: dict[str, str] = {
    VERDICT_FITS: "Fits",
    VERDICT_RAISED: "Fits, raise limit",
    VERDICT_NO: "Does not fit",
}

RUNTIME_LABELS: dict[Runtime, str] = {
    Runtime.LLAMA_CPP: "llama.cpp",
    Runtime.MLX: "MLX",
    Runtime.OLLAMA: "Ollama",
    Runtime.LMSTUDIO_GGUF: "LM Studio (llama.cpp engine)",
    Runtime.LMSTUDIO_MLX: "LM Studio (MLX engine)",
}

THIS_MACHINE = "__this_machine__"
THIS_MACHINE_NAME = "This machine"


def verdict_word(verdict: str | None, short: bool = False) -> str:
    if not verdict:
        return ""
    return (VERDICT_SHORT if short else VERDICT_WORDS).get(verdict, verdict)


def runtime_label(runtime: str | Runtime) -> str:
    """A runtime's name for people ("MLX"); anything that is not a runtime is shown as given."""
    try:
        return RUNTIME_LABELS[Runtime.parse(runtime)]
    except (ValueError, KeyError):
        return str(runtime)


def runtime_choices() -> list[tuple[str, str]]:
    """(label, value) for every runtime the engine knows, in the enum's order."""
    return [(runtime_label(r), r.value) for r in Runtime]


def use_choices() -> list[tuple[str, str | None]]:
    """(label, value) for the use filter: any, then every use the models service knows."""
    from forgeplanner.services.models_fit import USES

    return [("Any use", None), *((u.capitalize(), u) for u in USES)]


def _chip_part(cfg: Any, chip: Any) -> str:
    if chip is None:
        return ""
    if getattr(chip, "is_apple_silicon", False) and chip.gpu_cores:
        return f"{chip.gpu_cores}-core GPU"
    # Intel: "Intel Core i7 3.2GHz 6-core (Turbo 4.6)" -> "Core i7 3.2GHz 6-core"
    name = str(chip.name).split(" (", 1)[0]
    return name.removeprefix("Intel ")


def machine_name(cfg: Any, chip: Any = None) -> str:
    """ "Mac mini (2024) - M4 Pro, 20-core GPU, 64 GB": what the machine is called in every view
    (the catalog id stays available as a tooltip)."""
    parts = [cfg.machine]
    chip_part = _chip_part(cfg, chip)
    if chip_part:
        parts.append(chip_part)
    parts.append(f"{cfg.memory_gb} GB")
    return ", ".join(parts)


def machine_name_of(catalog: Any, config_id: str | None) -> str:
    """The machine name of a catalog id; the id itself when the catalog does not know it."""
    if not config_id:
        return ""
    if config_id == THIS_MACHINE:
        return THIS_MACHINE_NAME
    cfg = catalog.configs.get(config_id)
    if cfg is None:
        return config_id
    return machine_name(cfg, catalog.chips.get(cfg.chip_id))


def machine_choices(catalog: Any) -> list[tuple[str, str]]:
    """(name, config id) for every configuration: Mac mini before Mac Studio, oldest first."""
    out = []
    for cfg in sorted(catalog.configs.values(), key=lambda c: (c.kind, c.year, c.memory_gb, c.id)):
        out.append((machine_name(cfg, catalog.chips.get(cfg.chip_id)), cfg.id))
    return out


# Benchmark metrics as people read them: label and unit (the exports' table; keys are the ones
# the runners store).
METRICS: dict[str, tuple[str, str]] = RUN_METRICS


def metric_label(key: str, with_unit: bool = True) -> str:
    """ "decode_tps" -> "Decode (tokens/s)"; an unknown key is made readable, not hidden."""
    label, unit = METRICS.get(key, (key.replace("_", " ").capitalize(), ""))
    return f"{label} ({unit})" if with_unit and unit else label


_METRIC_KEYS = re.compile(r"\b(" + "|".join(map(re.escape, METRICS)) + r")\b")


def metric_words(text: str) -> str:
    """Stored metric keys inside a sentence read as their labels: "the repetitions of
    copy_gbps varied" -> "the repetitions of memory copy bandwidth varied"."""
    return _METRIC_KEYS.sub(lambda m: metric_label(m.group(1), with_unit=False).lower(), text)


def metric_unit(key: str) -> str:
    return METRICS.get(key, ("", ""))[1]


def tokens(n: int | None) -> str:
    """16384 -> "16K", 131072 -> "128K", 5000 -> "5,000": contexts as people say them."""
    if n is None:
        return "unknown"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    return f"{n:,}"


_FLAG_WORDS = {
    "(drop --no-flash-attention)": "(set flash attention to auto or on)",
    "--no-flash-attention": "flash attention off",
    "--link not given": "no link chosen",
    "--link": "the link",
    "--quant-min": "the lowest quantization",
    "--min-decode-tps": "the decode target",
    "--budget-usd": "the budget",
    "--max-watts": "the power limit",
    "pass --allow-clusters": "tick Clusters",
    "--allow-clusters": "Clusters",
    "--context": "the context",
}


def plain_reason(text: str) -> str:
    """The core's reasons name command-line flags (they are written for the CLI); the app says
    what they mean instead."""
    for flag, words in _FLAG_WORDS.items():
        text = text.replace(flag, words)
    return text
