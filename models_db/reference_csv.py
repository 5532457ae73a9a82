"""One-shot converter: the sourced reference table (models.csv) -> models_db/data/models.toml.

The TOML file is the reviewed artifact that ships; this converter exists so that the step from the
sourced table to the structured file is reproducible and reviewable. It parses the CSV's free-text
pattern columns into explicit fields and refuses any text it does not recognise, so a new pattern
shape fails here instead of silently becoming "full attention".

    python -m models_db.reference_csv models_db/data/models_reference.csv models_db/data/models.toml

The table is shipped beside the data it makes (models_db/data/models_reference.csv, every row
naming its sources), and so are its column notes (models_db/data/models_reference_README.md):
the rules encoded here come from those notes (cited inline).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

from models_db.formulas import recurrent_state_bytes_per_seq

REFERENCE_NAME = "ForgePlanner reference table models.csv (team-gathered, sources per row)"
REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "models_reference.csv"


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


def _sliding(row: dict[str, str], n_layers: int) -> dict[str, Any]:
    pattern = row["sliding_window_pattern"].strip()
    window = _int(row["sliding_window"])
    chunked = False
    if pattern.startswith("5 local : 1 global"):
        # Gemma 3: layer i global when (i+1) % 6 == 0 (google-deepmind/gemma
        # GEMMA3_ATTENTION_PATTERN; mlx-lm gemma3_text make_cache), README pitfalls.
        layers = [i for i in range(n_layers) if (i + 1) % 6 != 0]
    elif pattern == "1 local : 1 global (alternating)":
        # Gemma 2: notes "Local sliding window 4096 on even layers (idx 0,2,...), global on odd".
        if "even layers (idx 0,2,...)" not in row["notes"]:
            raise ConversionError(f"{row['id']}: Gemma 2 pattern without the even-layer note")
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
    return {
        "kind": "sliding",
        "sliding_window": window,
        "chunked": chunked,
        "pattern": pattern,
        "sliding_layers": layers,
    }


_CONV = re.compile(r"conv (?:\((\d+)-1\)|(\d+))x\(2x(\d+)x(\d+)\+(\d+)x(\d+)\)=([\d,]+)")
_REC = re.compile(r"recurrent (\d+)x\(?(\d+)(?:x(\d+))?\)?=([\d,]+)")


def _hybrid(row: dict[str, str], n_layers: int) -> dict[str, Any]:
    text = row["linear_attention_layers"]
    interval = re.search(r"full_attention_interval (\d+)", text)
    counted = re.search(r"(\d+) of (\d+)", text)
    if not interval or not counted:
        raise ConversionError(f"{row['id']}: unrecognised linear_attention_layers {text!r}")
    step = int(interval.group(1))
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
    if conv_elems != int(conv.group(7).replace(",", "")):
        raise ConversionError(f"{row['id']}: conv state arithmetic in the note does not add up")
    if int(rec.group(1)) != d_state or int(rec.group(4).replace(",", "")) != d_state * d_inner:
        raise ConversionError(f"{row['id']}: recurrent state arithmetic in the note is off")
    recurrent = {
        "linear_conv_kernel_dim": d_conv,
        "linear_key_head_dim": d_state,
        "linear_num_key_heads": n_group,
        "linear_value_head_dim": v_head_dim,
        "linear_num_value_heads": n_v_heads,
    }
    state = recurrent_state_bytes_per_seq(
        n_recurrent_layers=n_layers - len(attn),
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
    q_lora = _first_int(r"q_lora(?:_rank)? (\d+)", row["notes"], row["source"])
    if q_lora is not None:
        out["mla_q_lora_rank"] = q_lora
    indexer = _first_int(r"index_head_dim (\d+)", row["source"], row["notes"])
    if indexer is not None:
        out["indexer_head_dim"] = indexer
    return out


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
    if n_kv is None:
        if row["attention"] != "mla":
            raise ConversionError(f"{mid}: n_kv_heads missing on a non-MLA model")
        # MLA decompresses one K/V head per query head (kv_b_proj outputs n_heads heads), so the
        # decompressed head count equals n_heads by construction; it does not size the cache.
        n_kv = n_heads
        derived["n_kv_heads"] = (
            "not in the sources read; MLA decompresses one K/V head per query head, so = n_heads "
            "(does not size the MLA cache)"
        )
    model |= {
        "n_kv_heads": n_kv,
        "head_dim": int(row["head_dim"]),
        "vocab_size": int(row["vocab_size"]),
        "tie_word_embeddings": {"true": True, "false": False}[row["tie_word_embeddings"]],
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
    else:
        raise ConversionError(f"{mid}: unknown attention kind {kind!r}")
    model["attention"] = attention

    if row["moe_experts"].strip():
        moe: dict[str, Any] = {
            "n_experts": int(row["moe_experts"]),
            "experts_per_token": int(row["moe_experts_per_token"]),
            "shared_experts": int(row["moe_shared_experts"]),
            "expert_ffn": int(row["moe_intermediate_size"]),
        }
        step = _first_int(r"interleave_moe_layer_step (\d+)", row["notes"])
        dense = _int(row["first_dense_layers"])
        if dense is None and step is None:
            raise ConversionError(f"{mid}: MoE without first_dense_layers or interleave step")
        moe["first_dense_layers"] = dense or 0
        moe["interleave_step"] = step or 1
        model["moe"] = moe
    if unknown:
        model["unknown"] = unknown
    if derived:
        model["derived"] = derived
    return model


# --- a tiny TOML emitter: tomllib reads TOML but the stdlib cannot write it, and the shapes here
# (str, int, bool, list of int/str, one level of sub-tables) do not justify a dependency. ---


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 100_000 else str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConversionError(f"cannot write {type(value).__name__} to TOML")


HEADER = """\
# ForgePlanner model database: one [[models]] entry per open-weight model.
#
# Converted from the team's sourced reference table (models.csv, 56 rows; see its README for the
# KV rules per attention kind and pitfalls) by `python -m models_db.reference_csv`, then reviewed.
# Every entry names its sources in `source`; caveats are in `notes`.
#
# Conventions
# - params_total / params_active: the table gives billions with 3 decimals, computed from the
#   dims (embeddings + untied lm_head + all layers/experts; excludes vision towers and MTP heads).
#   They are stored as that figure x 1e9, so they are exact only to +-0.5 million parameters.
#   params_active (MoE only) excludes the input-embedding table and includes lm_head.
# - head_dim is the per-head K/V width from the config; never hidden/heads.
# - attention.sliding_layers / attention.attention_layers list 0-based layer indices explicitly;
#   `pattern` keeps the table's wording the list was derived from.
# - hybrid recurrent_state_bytes_per_seq = llama.cpp's r+s state, F32, summed over recurrent
#   layers: ((d_conv-1)*(d_inner + 2*n_group*d_state) + d_state*d_inner) * 4 B per layer.
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
                    out.append(f"{key} = {_toml_value(value)}\n")
    return "".join(out)


def convert(csv_path: Path) -> list[dict[str, Any]]:
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [convert_row(row) for row in rows]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    models = convert(Path(argv[0]))
    Path(argv[1]).write_text(to_toml(models), encoding="utf-8")
    print(f"wrote {len(models)} models to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
