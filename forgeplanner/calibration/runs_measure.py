"""Quantization, test shape (kind, depth, prompt, generated tokens, batch) and date of a run.

Quantizations use llama.cpp's names for GGUF file types (Q4_K_M, Q4_0, UD-Q4_K_XL, MXFP4,
NVFP4 ...; llama-bench's "Q4_K - Medium" is Q4_K_M) and `mlx-<n>bit`, `mlx-bf16`, `mlx-mxfp4`
... for MLX. A quantization the source does not state stays empty unless the model name or
tag states it (an mlx-community "-4bit" repo, a "q4_K_M" Ollama tag, a ".gguf" file name);
`quant_basis` says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# llama-bench / GGUF "ftype" descriptions -> llama.cpp file type names.
_GGUF_DESCRIPTIONS = {
    "Q4_K - MEDIUM": "Q4_K_M",
    "Q4_K - SMALL": "Q4_K_S",
    "Q5_K - MEDIUM": "Q5_K_M",
    "Q5_K - SMALL": "Q5_K_S",
    "Q3_K - MEDIUM": "Q3_K_M",
    "Q3_K - SMALL": "Q3_K_S",
    "Q3_K - LARGE": "Q3_K_L",
    "MXFP4_MOE": "MXFP4",
    "MXFP4 MOE": "MXFP4",
}
_GGUF_NAME = re.compile(
    r"(?i)\b(UD-)?(I?Q[1-8]_(?:K_(?:XXL|XL|M|S|L)|K|[0-9](?:_[0-9])?|XXS|XS|NL|M|S)|"
    r"TQ[12]_0|BF16|F16|F32|MXFP4|NVFP4)\b"
)
_MLX_BITS = re.compile(r"(?i)(?:^|[-_ ])(\d)[- ]?bit\b|\bq(\d)\b")


@dataclass(frozen=True)
class Quant:
    quant: str
    quant_basis: str


def _gguf_from(text: str) -> str:
    upper = text.upper()
    for desc, name in _GGUF_DESCRIPTIONS.items():
        if desc in upper:
            return name
    m = _GGUF_NAME.search(text)
    if not m:
        return ""
    ud, name = m.group(1), m.group(2).upper()
    return f"UD-{name}" if ud else name


def _mlx_from(text: str) -> str:
    low = text.lower()
    for fmt in ("mxfp4", "mxfp8", "nvfp4"):
        if fmt in low:
            return f"mlx-{fmt}"
    # An explicit bit width wins over "fp16" ("4-bit with fp16 scales" is 4-bit).
    m = _MLX_BITS.search(low) or re.search(r"\bint(\d)\b", low)
    if m:
        bits = next(g for g in m.groups() if g)
        group32 = "-g32" if re.search(r"\bg32\b|-g32\b", low) else ""
        return f"mlx-{bits}bit{group32}"
    if re.search(r"\bbf16\b", low):
        return "mlx-bf16"
    if re.search(r"\bfp16\b|\bf16\b|16-bit", low):
        return "mlx-fp16"
    return ""


# MLX recipes that are neither affine n-bit nor a standard float format.
_MLX_CUSTOM = re.compile(r"(?i)\boq\d|jang|-dq\b|\bdq\b|ternary|_k_xl")
_MLX_MIXED = re.compile(r"(?i)\bmix")


def normalise_quant(raw: str, runtime: str, model_name: str, hf_repo: str) -> Quant:
    """The quant in the dataset's names, from the source's label or else its model name."""
    text = raw.strip()
    low = text.lower()
    names = f"{model_name} {hf_repo}"
    mlx_like = runtime in ("mlx", "lmstudio-mlx") or (
        runtime.startswith("other:") and ("mlx" in runtime or low.startswith("mlx"))
    )
    if text:
        if "not stated" in low or "default" in low or low in ("gguf", "mlx"):
            return Quant("", f"not stated ({text})")
        if mlx_like or low.startswith("mlx"):
            label = re.sub(r"^mlx[-:]", "", text)
            if _MLX_MIXED.search(text):
                return Quant("mlx-mixed", f"stated ({text})")
            if _MLX_CUSTOM.search(text):
                return Quant(f"mlx-custom:{label}", "stated")
            base = _mlx_from(label)
            if not base:
                return Quant(f"mlx-custom:{label}", "stated")
            if base in ("mlx-4bit", "mlx-5bit") and re.search(r"\bg32\b", names.lower()):
                base += "-g32"
            return Quant(base, "stated" if base == text else f"stated ({text})")
        if runtime == "ollama" and re.search(r"(?i)nvfp4|mxfp8|int4", text):
            found = _mlx_from(text)
            return Quant(found, f"stated ({text}); an Ollama MLX model")
        name = _gguf_from(text)
        if name:
            # An uploader's own suffix ("Q4_K_M-XL") is another mix than the llama.cpp type.
            if re.search(r"(?i)-xl\b", text) and not text.upper().startswith("UD-"):
                return Quant(text, "stated (uploader's custom mix)")
            if re.fullmatch(r"Q\d_K_XL", name) and hf_repo.lower().startswith("unsloth/"):
                return Quant(f"UD-{name}", f"stated ({text}); an unsloth dynamic quant")
            return Quant(name, "stated" if name == text else f"stated ({text})")
        return Quant(f"other:{text}", "stated")
    # Not stated: only a name that carries the format says it.
    if mlx_like:
        found = _mlx_from(names)
        if found:
            return Quant(found, "from the model name")
        return Quant("", "not stated")
    if runtime == "ollama" and re.search(r"(?i)nvfp4|mxfp8|int4|-mlx\b", names):
        found = _mlx_from(names)
        if found:
            return Quant(found, "from the Ollama tag")
    found = _gguf_from(names)
    if found:
        return Quant(found, "from the model name/tag")
    return Quant("", "not stated")


def is_mlx_quant(quant: str) -> bool:
    return quant.startswith("mlx")


@dataclass(frozen=True)
class Shape:
    kind: str
    depth: int | None
    prompt_tokens: int | None
    gen_tokens: int | None
    batch: int | None
    batch_settings: str
    note: str


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_batch(raw: str, test: str) -> tuple[int | None, str]:
    """(concurrent sequences, llama.cpp -b/-ub settings) from the staging batch text."""
    text = raw.strip()
    if not text:
        m = re.search(r"(?i)\bB=(\d+)\b|batch (\d+) aggregate|batch of (\d+)", test)
        return (int(next(g for g in m.groups() if g)), "") if m else (None, "")
    settings = " ".join(x.replace(" ", "=") for x in re.findall(r"\bu?b[ =]\d+", text))
    if m := re.search(r"\bB=(\d+)", text):
        return int(m.group(1)), settings
    if text.isdigit():
        value = int(text)
        concurrent = re.search(r"(?i)batched|batch|concurren|parallel", test)
        # A bare number >= 64 outside a batched test is llama.cpp's -b, not concurrency.
        if concurrent or value < 64:
            return value, settings
        return None, f"b={value}"
    return None, settings


# mac-llm-bench's MLX runs (lib/run_bench_mlx.sh): mlx_lm.benchmark -p P -g G for P in
# 128/256/512 and G in 128/256 (no 512+256); each later pair overwrites ppP and tgG, so tg128
# comes from -p 512 -g 128 and tg256 from -p 256 -g 256.
_MAC_LLM_BENCH_MLX_DEPTH = {"tg128": 512, "tg256": 256}


def normalise_shape(raw: dict[str, str], input_file: str) -> Shape:
    kind = raw["kind"].strip()
    depth = _int(raw["depth"])
    prompt = _int(raw["prompt_tokens"])
    gen = _int(raw["gen_tokens"])
    test = raw["test"].strip()
    note = ""
    if input_file == "repo_heldout.csv" and kind == "decode":
        # The first held-out table stored the mean context during generation; the dataset
        # stores the context before generation starts (the staging convention).
        if m := re.fullmatch(r"tg(\d+)", test):
            depth, gen = 0, int(m.group(1))
            note = "depth converted from the held-out table's mean-context convention"
        elif m := re.search(r"generation \((\d+)\) after (\d+)", test):
            depth, gen = int(m.group(2)), int(m.group(1))
            note = "depth converted from the held-out table's mean-context convention"
        elif test.startswith("main eval"):
            depth, gen = 494, 1023
            note = "depth = the 494-token prompt before ./main's 1023 generated tokens"
        else:
            depth = None
            note = "depth not stated (short prompt); the held-out table's 256 was a convention"
    if (
        kind == "decode"
        and "enescingoz/mac-llm-bench" in raw.get("source_url", "")
        and "tool mlx_lm.benchmark" in raw["notes"]
        and test in _MAC_LLM_BENCH_MLX_DEPTH
    ):
        depth = _MAC_LLM_BENCH_MLX_DEPTH[test]
        note = (
            f"depth {depth}: mac-llm-bench's lib/run_bench_mlx.sh keeps the {test} of "
            f"mlx_lm.benchmark -p {depth}, which generates after the prompt"
        )
    if kind == "decode" and depth == 0 and prompt and not re.match(r"(?i)tg\d+\b|.*@ ?d\d", test):
        # Generation after a prompt starts at the prompt's depth; some tables put the prompt
        # in prompt_tokens and 0 in depth (llama-bench's tgN, from an empty cache, keeps 0).
        depth = prompt
        note = "; ".join(
            x for x in (note, "depth = the prompt generated after (the table gave 0)") if x
        )
    if kind == "decode" and gen is None:
        m = re.fullmatch(r"tg(\d+)(?: @ d\d+)?", test)
        if m:
            gen = int(m.group(1))
    if kind == "prefill" and prompt is None:
        m = re.fullmatch(r"pp(\d+)(?: @ d\d+)?", test)
        if m:
            prompt = int(m.group(1))
    batch, settings = parse_batch(raw["batch"], test)
    return Shape(kind, depth, prompt, gen, batch, settings, note)


_DATE = re.compile(r"\b\d{4}-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?\b")


def normalise_date(raw: str) -> tuple[str, str]:
    """(YYYY-MM-DD | YYYY-MM | YYYY | '', note when the source text was more than a date)."""
    text = raw.strip()
    if re.fullmatch(r"\d{4}", text) or _DATE.fullmatch(text):
        return text, ""
    if not text:
        return "", ""
    if text.startswith("not stated") or re.fullmatch(r"\d{4}-\d{4}", text):
        return "", f"date as printed: {text}"
    if m := _DATE.search(text):
        return m.group(0), f"date as printed: {text}"
    if m := re.match(r"(\d{4})\b", text):
        return m.group(1), f"date as printed: {text}"
    return "", f"date as printed: {text}"
