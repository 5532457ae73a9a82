"""Generator: the reviewed, sourced table models_db/data/models.csv -> models_db/data/models.toml.

models.csv is the reviewed data file (one row per model, its sources, licence and release-date
sources, aliases, and a `review` grade per row); models.toml is GENERATED from it and must never
be edited by hand (tests/models_db/test_models_generated.py regenerates it and compares). This
converter parses the CSV's free-text pattern columns and the `extra_arch` JSON into explicit
fields and refuses any text it does not recognise, so a new pattern shape fails here instead of
silently becoming "full attention".

    python -m models_db.reference_csv            # regenerate models.toml from models.csv
    python -m models_db.reference_csv --check    # exit 1 when models.toml is stale

The KV/state rules per attention kind follow the team's model reference notes (formulas and
llama.cpp sources cited inline) and docs/models.md.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

from models_db.formulas import recurrent_state_bytes_per_seq

DATA_DIR = Path(__file__).parent / "data"
CSV_FILE = DATA_DIR / "models.csv"
TOML_FILE = DATA_DIR / "models.toml"
REFERENCE_NAME = "models_db/data/models.csv"
REVIEW_GRADES = ("primary", "secondary", "unverified")


class ConversionError(ValueError):
    pass


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value else None


def _billions(value: str) -> int | None:
    # The table gives billions with 3 decimals: keep exactly that precision (+-0.5e6 params).
    value = value.strip()
    if not value:
        return None
    whole, _, frac = value.partition(".")
    frac = (frac + "000")[:3]
    if len(value.partition(".")[2]) > 3:
        raise ConversionError(f"params {value!r} has more than 3 decimals")
    return int(whole) * 10**9 + int(frac) * 10**6


def _arch(row: dict[str, str]) -> dict[str, Any]:
    """The row's `extra_arch` JSON object (config fields the fixed columns do not hold)."""
    text = row.get("extra_arch", "").strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{row['id']}: extra_arch is not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConversionError(f"{row['id']}: extra_arch must be a JSON object")
    return value


def _sliding(row: dict[str, str], n_layers: int) -> dict[str, Any]:
    pattern = row["sliding_window_pattern"].strip()
    window = _int(row["sliding_window"])
    chunked = False
    local = re.match(r"(\d+) local : 1 global", pattern)
    if pattern.startswith("5 local : 1 global") or (local and pattern != "1 local : 1 global"):
        # Gemma 3 (and Gemma 3n/4, OLMo 3 with their own k): layer i global when
        # (i+1) % (k+1) == 0 (google-deepmind/gemma GEMMA3_ATTENTION_PATTERN; mlx-lm gemma3_text
        # make_cache; the Gemma 4 layer_types ([sliding]*k + [full])*n). llama.cpp
        # set_swa_pattern(k+1): il % n_pattern < n_pattern - 1 is SWA, the same layers.
        step = int(local.group(1)) + 1 if local else 6
        layers = [i for i in range(n_layers) if (i + 1) % step != 0]
    elif pattern == "1 local : 1 global (alternating)":
        # Gemma 2: local sliding window on even layers (idx 0,2,...), global on odd; llama.cpp
        # set_swa_pattern(2) for LLM_ARCH_GEMMA2 gives the same layers.
        if "even layers (idx 0,2,...)" not in row["notes"] and row["family"] != "gemma-2":
            raise ConversionError(f"{row['id']}: alternating pattern outside Gemma 2")
        layers = [i for i in range(n_layers) if i % 2 == 0]
    elif pattern == "1 sliding : 1 full (alternating, even layers sliding)":
        # gpt-oss: sliding_window if layer_idx % 2 == 0 (openai/gpt-oss model.py @7b58334).
        layers = [i for i in range(n_layers) if i % 2 == 0]
    elif pattern.startswith("3 chunked-local : 1 global"):
        # Llama 4: ChunkedKVCache on layers with (i+1) % 4 != 0 (mlx-lm llama4.py @d78bf58);
        # llama.cpp masks these as LLAMA_SWA_TYPE_CHUNKED.
        layers = [i for i in range(n_layers) if (i + 1) % 4 != 0]
        chunked = True
    else:
        raise ConversionError(f"{row['id']}: unrecognised sliding_window_pattern {pattern!r}")
    stated = re.search(r"\((\d+) global of (\d+)\)", pattern)
    if stated:
        n_global, n_total = int(stated.group(1)), int(stated.group(2))
        if n_total != n_layers or n_layers - len(layers) != n_global:
            raise ConversionError(f"{row['id']}: pattern {pattern!r} disagrees with the layer rule")
    if window is None:
        raise ConversionError(f"{row['id']}: sliding attention without a window")
    out: dict[str, Any] = {
        "kind": "sliding",
        "sliding_window": window,
        "chunked": chunked,
        "pattern": pattern,
        "sliding_layers": layers,
    }
    arch = _arch(row)
    if arch.get("sliding_window") not in (None, window):
        raise ConversionError(f"{row['id']}: extra_arch sliding_window disagrees with the column")
    # Gemma 4: global layers have their own K/V width and KV head count (google-deepmind/gemma
    # gemma4 _config.py global_key_size / num_global_key_value_heads; llama.cpp gemma4.cpp
    # reads attention.key_length (global) and attention.key_length_swa (local) separately).
    global_hd = arch.get("global_head_dim")
    if global_hd is not None and global_hd != int(row["head_dim"]):
        out["global_head_dim"] = int(global_hd)
    global_kv = arch.get("num_global_key_value_heads")
    if global_kv is not None and global_kv != int(row["n_kv_heads"]):
        out["global_n_kv_heads"] = int(global_kv)
    if arch.get("attention_k_eq_v"):
        out["global_v_is_k"] = True
    shared = arch.get("num_kv_shared_layers")
    if shared:
        out["kv_shared_layers"] = int(shared)
    return out


_CONV = re.compile(r"conv (?:\((\d+)-1\)|(\d+))x\(2x(\d+)x(\d+)\+(\d+)x(\d+)\)=([\d,]+)")
_REC = re.compile(r"recurrent (\d+)x\(?(\d+)(?:x(\d+))?\)?=([\d,]+)")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _hybrid(row: dict[str, str], n_layers: int) -> dict[str, Any]:
    text = row["linear_attention_layers"]
    arch = _arch(row)
    if "hybrid_override_pattern" in arch:
        return _mamba2_hybrid(row, n_layers, arch)
    if "kda_num_heads" in arch:
        return _kda_hybrid(row, n_layers, arch)
    interval = re.search(r"every 4th layer|full_attention_interval (\d+)", text)
    counted = re.search(r"(\d+) of (\d+)", text)
    if not interval or not counted:
        raise ConversionError(f"{row['id']}: unrecognised linear_attention_layers {text!r}")
    step = int(interval.group(1) or arch.get("full_attention_interval") or 4)
    # mlx-lm qwen3_next.py: is_linear = (layer_idx + 1) % full_attention_interval != 0.
    attn = [i for i in range(n_layers) if (i + 1) % step == 0]
    if len(attn) != int(counted.group(1)) or int(counted.group(2)) != n_layers:
        raise ConversionError(f"{row['id']}: {text!r} disagrees with the interval rule")
    note = row["ssm_state_note"]
    conv, rec = _CONV.search(note), _REC.search(note)
    if not conv or not rec:
        raise ConversionError(f"{row['id']}: cannot read the state fields from {note!r}")
    d_conv = int(conv.group(1)) if conv.group(1) else int(conv.group(2)) + 1
    n_group, d_state = int(conv.group(3)), int(conv.group(4))
    n_v_heads, v_head_dim = int(conv.group(5)), int(conv.group(6))
    d_inner = n_v_heads * v_head_dim
    conv_elems = (d_conv - 1) * (d_inner + 2 * n_group * d_state)
    if conv_elems != _number(conv.group(7)):
        raise ConversionError(f"{row['id']}: conv state arithmetic in the note does not add up")
    if int(rec.group(1)) != d_state or _number(rec.group(4)) != d_state * d_inner:
        raise ConversionError(f"{row['id']}: recurrent state arithmetic in the note is off")
    recurrent = {
        "linear_conv_kernel_dim": d_conv,
        "linear_key_head_dim": d_state,
        "linear_num_key_heads": n_group,
        "linear_value_head_dim": v_head_dim,
        "linear_num_value_heads": n_v_heads,
    }
    for key, value in recurrent.items():
        if key in arch and arch[key] != value:
            raise ConversionError(f"{row['id']}: extra_arch {key} disagrees with the state note")
    layers = [i for i in range(n_layers) if i not in attn]
    state = recurrent_state_bytes_per_seq(
        n_recurrent_layers=len(layers),
        d_conv=d_conv,
        d_state=d_state,
        n_group=n_group,
        d_inner=d_inner,
    )
    return {
        "kind": "hybrid",
        "pattern": text,
        "attention_layers": attn,
        "recurrent_state_bytes_per_seq": state,
        "recurrent": recurrent,
        "recurrent_note": note,
        "state": {
            "kind": "gated_deltanet",
            "layers": layers,
            "conv_kernel": d_conv,
            "conv_elements": conv_elems,
            "state_elements": d_state * d_inner,
            "n_heads": n_v_heads,
            "head_dim": v_head_dim,
            "n_groups": n_group,
            "d_state": d_state,
        },
    }


def _mamba2_hybrid(row: dict[str, str], n_layers: int, arch: dict[str, Any]) -> dict[str, Any]:
    """Nemotron-H: one block per layer from hybrid_override_pattern ("M" Mamba-2, "*" attention,
    "-" MLP, "E" MoE); KV only on "*", Mamba-2 state only on "M" (llama.cpp nemotron-h.cpp uses
    the hybrid memory with recurrent layers where n_head_kv(il) == 0 and ssm_d_inner > 0)."""
    blocks = arch["hybrid_override_pattern"]
    if len(blocks) != n_layers or not set(blocks) <= set("M*-E"):
        raise ConversionError(f"{row['id']}: hybrid_override_pattern does not match n_layers")
    attn = [i for i, c in enumerate(blocks) if c == "*"]
    mamba = [i for i, c in enumerate(blocks) if c == "M"]
    d_conv = int(arch["conv_kernel"])
    d_state = int(arch["ssm_state_size"])
    n_group = int(arch["n_groups"])
    n_heads, head_dim = int(arch["mamba_num_heads"]), int(arch["mamba_head_dim"])
    d_inner = n_heads * head_dim
    conv_elems = (d_conv - 1) * (d_inner + 2 * n_group * d_state)
    note = row["ssm_state_note"]
    stated = re.search(r"=([\d,]+) \+ ssm \d+x\d+x\d+=([\d,]+)", note)
    if not stated or _number(stated.group(1)) != conv_elems:
        raise ConversionError(f"{row['id']}: Mamba-2 conv state in the note does not add up")
    if _number(stated.group(2)) != d_state * d_inner:
        raise ConversionError(f"{row['id']}: Mamba-2 ssm state in the note does not add up")
    state = recurrent_state_bytes_per_seq(
        n_recurrent_layers=len(mamba), d_conv=d_conv, d_state=d_state, n_group=n_group,
        d_inner=d_inner,
    )  # fmt: skip
    return {
        "kind": "hybrid",
        "pattern": row["linear_attention_layers"],
        "attention_layers": attn,
        "recurrent_state_bytes_per_seq": state,
        "recurrent_note": note,
        "state": {
            "kind": "mamba2",
            "layers": mamba,
            "conv_kernel": d_conv,
            "conv_elements": conv_elems,
            "state_elements": d_state * d_inner,
            "n_heads": n_heads,
            "head_dim": head_dim,
            "n_groups": n_group,
            "d_state": d_state,
        },
        "_layer_blocks": blocks,
    }


def _kda_hybrid(row: dict[str, str], n_layers: int, arch: dict[str, Any]) -> dict[str, Any]:
    """Kimi Linear: MLA on the listed layers, Kimi Delta Attention elsewhere. llama.cpp
    llama-hparams.cpp (KDA branch): n_embd_r = 3*(d_conv-1)*n_head*head_kda (q, k and v each
    have a short conv), n_embd_s = head_kda^2 * n_head."""
    attn = sorted(int(i) - 1 for i in arch["full_attn_layers_1based"])
    if not attn or attn[-1] >= n_layers:
        raise ConversionError(f"{row['id']}: full_attn_layers_1based out of range")
    n_heads, head_dim = int(arch["kda_num_heads"]), int(arch["kda_head_dim"])
    d_conv = int(arch["short_conv_kernel_size"])
    conv_elems = 3 * (d_conv - 1) * n_heads * head_dim
    state_elems = head_dim * head_dim * n_heads
    note = row["ssm_state_note"]
    numbers = [_number(x) for x in re.findall(r"=\s*([\d,]+)", note)]
    if numbers[:2] != [state_elems, conv_elems]:
        raise ConversionError(f"{row['id']}: KDA state in the note does not add up")
    layers = [i for i in range(n_layers) if i not in attn]
    return {
        "kind": "hybrid",
        "pattern": row["linear_attention_layers"],
        "attention_layers": attn,
        "recurrent_state_bytes_per_seq": (conv_elems + state_elems) * 4 * len(layers),
        "recurrent_note": note,
        "hybrid_attention": "mla",
        "state": {
            "kind": "kda",
            "layers": layers,
            "conv_kernel": d_conv,
            "conv_elements": conv_elems,
            "state_elements": state_elems,
            "n_heads": n_heads,
            "head_dim": head_dim,
            "d_state": head_dim,
        },
    }


def _first_int(pattern: str, *texts: str) -> int | None:
    for text in texts:
        m = re.search(pattern, text)
        if m:
            return int(m.group(1))
    return None


def _mla(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "mla",
        "mla_kv_lora_rank": _int(row["mla_kv_lora_rank"]),
        "mla_qk_rope_head_dim": _int(row["mla_qk_rope_head_dim"]),
        "mla_qk_nope_head_dim": _int(row["mla_qk_nope_head_dim"]),
        "mla_v_head_dim": _int(row["mla_v_head_dim"]),
    }
    arch = _arch(row)
    q_lora = arch.get("q_lora_rank") or _first_int(
        r"q_lora(?:_rank)? (\d+)", row["notes"], row["source"]
    )
    if q_lora is not None:
        out["mla_q_lora_rank"] = int(q_lora)
    indexer = arch.get("index_head_dim") or _first_int(
        r"index_head_dim (\d+)", row["source"], row["notes"]
    )
    if indexer is not None:
        out["indexer_head_dim"] = indexer
    return out


def _tied(row: dict[str, str], derived: dict[str, str]) -> bool:
    value = row["tie_word_embeddings"].strip()
    if value in ("true", "false"):
        return value == "true"
    if value:
        raise ConversionError(f"{row['id']}: tie_word_embeddings must be true, false or empty")
    # Not read: the row's params were computed under a stated assumption; keep that assumption
    # so params_total and the flag agree, and say so.
    m = re.search(r"computed (?:as )?(TIED|untied)", row["notes"], re.IGNORECASE)
    if m is None:
        raise ConversionError(f"{row['id']}: tie flag empty and the notes state no assumption")
    tied = m.group(1).lower() == "tied"
    derived["tie_word_embeddings"] = (
        f"not read from the config; params_total was computed assuming "
        f"{'tied' if tied else 'untied'} embeddings (see notes for the difference)"
    )
    return tied


def convert_row(row: dict[str, str]) -> dict[str, Any]:
    mid = row["id"]
    n_layers = int(row["n_layers"])
    n_heads = int(row["n_heads"])
    unknown: dict[str, str] = {}
    derived: dict[str, str] = {}
    model: dict[str, Any] = {
        "id": mid,
        "name": row["hf_repo"].rsplit("/", 1)[-1],
        "family": row["family"],
        "hf_repo": row["hf_repo"],
        "params_total": _billions(row["params_total_b"]),
    }
    active = _billions(row["params_active_b"])
    if active is not None:
        model["params_active"] = active
    model |= {
        "n_layers": n_layers,
        "hidden_size": int(row["hidden_size"]),
    }
    if row["intermediate_size"].strip():
        model["intermediate_size"] = int(row["intermediate_size"])
    model["n_heads"] = n_heads
    n_kv = _int(row["n_kv_heads"])
    latent = row["attention"] == "mla" or (
        row["attention"] == "hybrid" and row["mla_kv_lora_rank"].strip() != ""
    )
    if n_kv is None:
        if not latent:
            raise ConversionError(f"{mid}: n_kv_heads missing on a non-MLA model")
        # MLA decompresses one K/V head per query head (kv_b_proj outputs n_heads heads), so the
        # decompressed head count equals n_heads by construction; it does not size the cache.
        n_kv = n_heads
        derived["n_kv_heads"] = (
            "not in the sources read; MLA decompresses one K/V head per query head, so = n_heads "
            "(does not size the MLA cache)"
        )
    head_dim = _int(row["head_dim"])
    if head_dim is None:
        if not latent:
            raise ConversionError(f"{mid}: head_dim missing on a non-MLA model")
        head_dim = int(row["mla_qk_nope_head_dim"]) + int(row["mla_qk_rope_head_dim"])
        derived["head_dim"] = "MLA q/k head = qk_nope_head_dim + qk_rope_head_dim"
    model |= {
        "n_kv_heads": n_kv,
        "head_dim": head_dim,
        "vocab_size": int(row["vocab_size"]),
        "tie_word_embeddings": _tied(row, derived),
    }
    ctx = _int(row["max_context"])
    if ctx is None:
        unknown["max_context"] = (
            "not found in the sources read (reference table marks it INCOMPLETE)"
        )
    else:
        model["max_context"] = ctx
    if row["rope_theta"].strip():
        model["rope_theta"] = int(float(row["rope_theta"]))
    model["license"] = row["license"].strip()
    if not model["license"]:
        unknown["license"] = "not found in the sources read"
    model["release_date"] = row["release_date"].strip()
    if not model["release_date"]:
        unknown["release_date"] = "not found in the sources read"
    for key in ("license_source", "release_date_source", "source_commit"):
        if row.get(key, "").strip():
            model[key] = row[key].strip()
    review = row.get("review", "").strip()
    if review not in REVIEW_GRADES:
        raise ConversionError(f"{mid}: review must be one of {REVIEW_GRADES}, not {review!r}")
    model["review"] = review
    aliases = [a.strip() for a in row.get("aliases", "").split(";") if a.strip()]
    if aliases:
        model["aliases"] = aliases
    use = [u.strip() for u in row.get("use", "").split(";") if u.strip()]
    if use:
        model["use"] = use
    model["formats"] = ["gguf", "mlx"]
    if row["family"] == "gpt-oss":
        # README: "MoE weights ship in MXFP4 (~4.25 bpw); attention/embeddings BF16".
        model["native_quant"] = "MXFP4"
    model["source"] = f"{row['source']} (via {REFERENCE_NAME})"
    model["notes"] = row["notes"]

    kind = row["attention"]
    if kind == "full":
        attention: dict[str, Any] = {"kind": "full"}
        if row["sliding_window"].strip():
            # Phi-3-mini declares a window that llama.cpp ignores (models_README pitfalls).
            if "disables Phi SWA" not in row["sliding_window_pattern"]:
                raise ConversionError(f"{mid}: full attention with a live sliding window?")
            model["declared_sliding_window"] = int(row["sliding_window"])
            model["declared_sliding_window_note"] = row["sliding_window_pattern"]
    elif kind == "sliding":
        attention = _sliding(row, n_layers)
    elif kind == "mla":
        attention = _mla(row)
        if "indexer_head_dim" not in attention and ("DSA" in row["notes"]):
            unknown["attention.indexer_head_dim"] = (
                "DeepSeek-style sparse attention indexer key width not read (index_head_dim)"
            )
    elif kind == "hybrid":
        attention = _hybrid(row, n_layers)
        blocks = attention.pop("_layer_blocks", None)
        if blocks:
            model["layer_blocks"] = blocks
        if attention.get("hybrid_attention") == "mla":
            attention |= {k: v for k, v in _mla(row).items() if k != "kind"}
    else:
        raise ConversionError(f"{mid}: unknown attention kind {kind!r}")
    model["attention"] = attention

    arch = _arch(row)
    if row["moe_experts"].strip():
        expert_ffn = int(row["moe_intermediate_size"])
        shared = _int(row["moe_shared_experts"])
        shared_ffn = arch.get("shared_expert_intermediate_size") or arch.get(
            "moe_shared_expert_intermediate_size"
        )
        if "moe_dense_shared_mlp_intermediate" in arch:
            # Gemma 4 26B-A4B: every layer runs a dense MLP beside the routed experts; llama.cpp
            # builds it as the shared expert ("we use normal FFN as shared expert", gemma4.cpp).
            if shared not in (None, 1):
                raise ConversionError(f"{mid}: Gemma 4 dense branch with {shared} shared experts")
            shared, shared_ffn = 1, arch["moe_dense_shared_mlp_intermediate"]
        if shared is None:
            raise ConversionError(f"{mid}: MoE without moe_shared_experts")
        moe: dict[str, Any] = {
            "n_experts": int(row["moe_experts"]),
            "experts_per_token": int(row["moe_experts_per_token"]),
            "shared_experts": shared,
            "expert_ffn": expert_ffn,
        }
        if shared and shared_ffn and int(shared_ffn) != expert_ffn * shared:
            moe["shared_expert_ffn"] = int(shared_ffn)
        step = _first_int(r"interleave_moe_layer_step (\d+)", row["notes"])
        dense = _int(row["first_dense_layers"])
        if dense is None and step is None:
            raise ConversionError(f"{mid}: MoE without first_dense_layers or interleave step")
        moe["first_dense_layers"] = dense or 0
        moe["interleave_step"] = step or 1
        model["moe"] = moe
    ple_dim = arch.get("hidden_size_per_layer_input")
    if ple_dim:
        ple = {"dim": int(ple_dim), "vocab": int(arch["vocab_size_per_layer_input"])}
        stated = arch.get("per_layer_embedding_params")
        if stated is not None and stated != ple["dim"] * ple["vocab"] * n_layers:
            raise ConversionError(f"{mid}: per_layer_embedding_params != vocab x layers x dim")
        model["per_layer_embedding"] = ple
    if unknown:
        model["unknown"] = unknown
    if derived:
        model["derived"] = derived
    kept = {k: v for k, v in arch.items() if v is not None}
    if kept:
        model["extra"] = {"arch": kept}
    return model


# --- a tiny TOML emitter: tomllib reads TOML but the stdlib cannot write it, and the shapes here
# (str, int, bool, list of int/str, one level of sub-tables) do not justify a dependency. ---


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 100_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConversionError(f"cannot write {type(value).__name__} to TOML")


HEADER = """\
# ForgePlanner model database: one [[models]] entry per open-weight model.
#
# GENERATED by `python -m models_db.reference_csv` from the reviewed table models.csv in this
# folder. Do not edit this file by hand: edit models.csv and regenerate (a test fails when the two
# disagree). Every entry names its sources in `source`, `license_source` and
# `release_date_source`; `review` grades the row (primary: read from the model's config or the
# vendor's code at a pinned commit; secondary: copied from a public quote of the config;
# unverified: some dims inferred from a sibling model, listed in `notes`).
#
# Conventions
# - params_total / params_active: the table gives billions with 3 decimals, computed from the
#   dims (embeddings + untied lm_head + all layers/experts; excludes vision towers and MTP heads).
#   They are stored as that figure x 1e9, so they are exact only to +-0.5 million parameters.
#   params_active (MoE only) excludes the input-embedding table and includes lm_head.
# - head_dim is the per-head K/V width from the config; never hidden/heads. Where global layers
#   differ (Gemma 4), attention.global_head_dim / global_n_kv_heads give theirs.
# - attention.sliding_layers / attention.attention_layers list 0-based layer indices explicitly;
#   `pattern` keeps the table's wording the list was derived from.
# - hybrid recurrent_state_bytes_per_seq = llama.cpp's r+s state, F32, summed over the layers in
#   attention.state.layers: (conv_elements + state_elements) * 4 B per layer.
# - aliases: names people type (HF repo ids, Ollama tags); resolved case-insensitively.
# - [models.unknown] gives the reason for every figure that could not be sourced; such figures
#   are absent (shown as unknown), never guessed. [models.derived] explains derived values.
"""


def to_toml(models: list[dict[str, Any]]) -> str:
    out = [HEADER]
    for model in models:
        out.append("\n[[models]]\n")
        tables = {k: v for k, v in model.items() if isinstance(v, dict)}
        for key, value in model.items():
            if not isinstance(value, dict):
                out.append(f"{key} = {_toml_value(value)}\n")
        for name, table in tables.items():
            nested = {k: v for k, v in table.items() if isinstance(v, dict)}
            out.append(f"\n[models.{name}]\n")
            for key, value in table.items():
                if not isinstance(value, dict):
                    key_text = f'"{key}"' if "." in key else key
                    out.append(f"{key_text} = {_toml_value(value)}\n")
            for sub, subtable in nested.items():
                out.append(f"\n[models.{name}.{sub}]\n")
                for key, value in subtable.items():
                    out.append(f"{_toml_key(key)} = {_toml_value(value)}\n")
    return "".join(out)


def convert(csv_path: Path) -> list[dict[str, Any]]:
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [convert_row(row) for row in rows]


def generate(csv_path: Path = CSV_FILE) -> str:
    """The TOML text that models.toml must hold for this models.csv."""
    models = convert(csv_path)
    ids = [m["id"] for m in models]
    if len(set(ids)) != len(ids):
        raise ConversionError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return to_toml(models)


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__, file=sys.stderr)
        return 2
    text = generate()
    if argv == ["--check"]:
        if TOML_FILE.read_text(encoding="utf-8") != text:
            print(f"{TOML_FILE} is stale or hand-edited: run python -m models_db.reference_csv")
            return 1
        return 0
    tmp = TOML_FILE.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(TOML_FILE)  # atomic: a failed run never leaves half a file
    print(f"wrote {text.count(chr(10) + '[[models]]')} models to {TOML_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
