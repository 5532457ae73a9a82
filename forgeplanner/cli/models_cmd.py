"""`forgeplanner models list|show ID|import PATH [--json]`: the model database.

JSON keys are stable: `models list --json` -> {"models": [...]} (one row per model with `id`,
`name`, `family`, `params_total`, `params_active`, `n_layers`, `max_context`, `attention`,
`moe`, `license`, `origin`, `source`); `models show ID --json` -> {"model": {...}} (the full
spec, models_db.schema.spec_to_dict); `models import ... --json` -> {"model": {...}, "saved":
bool, "saved_as": id or null}. Unknown figures print as "unknown" in the tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError
from forgeplanner.services.models import (
    find_model,
    list_user_models,
    read_model_file,
    save_user_model,
)

if TYPE_CHECKING:
    from forgeplanner.domain.model import ModelSpec

DEFAULT_OLLAMA_URL = "http://localhost:11434"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="model database: list, show, import (config.json, GGUF, Ollama)",
        description="Open models' architectures for sizing, with their sources.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND")

    lst = sub.add_parser("list", help="catalog models and your imported models")
    lst.add_argument("--family", help="only this family (e.g. llama-3.1, qwen3, gemma-3)")
    kind = lst.add_mutually_exclusive_group()
    kind.add_argument("--moe", action="store_true", help="only mixture-of-experts models")
    kind.add_argument("--dense", action="store_true", help="only dense models")
    lst.add_argument(
        "--min-context", type=argtypes.depth_tokens, metavar="TOKENS", help="max context >= TOKENS"
    )
    lst.add_argument("--license", metavar="TEXT", help="license contains TEXT (case-insensitive)")
    lst.add_argument("--catalog-only", action="store_true", help="leave out your own models")
    add_json_flag(lst)
    lst.set_defaults(func=_list)

    show = sub.add_parser("show", help="everything about one model")
    show.add_argument("id", metavar="ID")
    add_json_flag(show)
    show.set_defaults(func=_show)

    imp = sub.add_parser(
        "import",
        help="import a config.json, a .gguf file, an Ollama reply, hf:ORG/REPO or ollama:NAME",
        description="Detects a Hugging Face config.json (or a directory holding one), a GGUF "
        "file, or a saved Ollama /api/show JSON; or asks a running Ollama with --ollama NAME. "
        "hf:ORG/REPO[@REV] reads config.json (or a GGUF header by range requests, never the "
        "weights) from the Hugging Face hub (HF_ENDPOINT and your `hf auth login` token apply); "
        "ollama:NAME[:TAG] reads the manifest and GGUF header from the Ollama registry. Prints "
        "the spec and saves it to your model database.",
    )
    imp.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        help="config.json / dir / .gguf / .json, hf:ORG/REPO[@REV] or ollama:NAME[:TAG]",
    )
    imp.add_argument("--file", dest="gguf_file", help="hf: which .gguf of the repo to read")
    imp.add_argument("--ollama", metavar="NAME", help="model name in a running Ollama")
    imp.add_argument("--url", default=DEFAULT_OLLAMA_URL, help="Ollama URL (default: %(default)s)")
    imp.add_argument("--id", dest="model_id", help="id to save the model under")
    imp.add_argument("--no-save", action="store_true", help="print only, do not save")
    imp.add_argument(
        "--replace", action="store_true", help="overwrite your model saved under the same id"
    )
    add_json_flag(imp)
    imp.set_defaults(func=_import)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


# ---------------------------------------------------------------- helpers


def _billions(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e9:.3f}".rstrip("0").rstrip(".") + "B"


def _ctx(spec: ModelSpec) -> str:
    return "unknown" if spec.max_context is None else f"{spec.max_context:,}"


def _attention(spec: ModelSpec) -> str:
    a = spec.attention
    if a.kind == "sliding":
        what = "chunked" if a.chunked else "window"
        return f"sliding ({what} {a.sliding_window} on {len(a.sliding_layers)}/{spec.n_layers})"
    if a.kind == "mla":
        return f"mla (latent {a.mla_kv_lora_rank}+{a.mla_qk_rope_head_dim})"
    if a.kind == "hybrid":
        return f"hybrid ({len(a.attention_layers)}/{spec.n_layers} attention)"
    return "full"


def _license(spec: ModelSpec) -> str:
    return spec.license or "unknown"


def _row(spec: ModelSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "family": spec.family,
        "params_total": spec.params_total,
        "params_active": spec.params_active,
        "n_layers": spec.n_layers,
        "max_context": spec.max_context,
        "attention": spec.attention.kind,
        "moe": spec.moe is not None,
        "license": spec.license,
        "origin": spec.origin,
        "source": spec.source,
    }


# ---------------------------------------------------------------- list / show


def _list(args: argparse.Namespace) -> int:
    from models_db import load_models

    models = list(load_models().all())
    if not args.catalog_only:
        models += list_user_models()
    if args.family:
        models = [m for m in models if m.family.lower() == args.family.lower()]
    if args.moe:
        models = [m for m in models if m.moe is not None]
    if args.dense:
        models = [m for m in models if m.moe is None]
    if args.min_context is not None:
        models = [m for m in models if m.max_context and m.max_context >= args.min_context]
    if args.license:
        models = [m for m in models if args.license.lower() in m.license.lower()]
    if args.json:
        print_json({"models": [_row(m) for m in models]})
        return 0
    print_table(
        ["id", "family", "params", "active", "layers", "context", "attention", "license", "origin"],
        [
            [
                m.id,
                m.family,
                _billions(m.params_total),
                _billions(m.params_active) if m.moe else "",
                m.n_layers,
                _ctx(m),
                _attention(m),
                _license(m)[:40],
                m.origin,
            ]
            for m in models
        ],
    )
    return 0


def _print_spec(spec: ModelSpec) -> None:
    a = spec.attention
    rows: list[list[Any]] = [
        ["id", spec.id],
        ["name", spec.name],
        ["family", spec.family],
        ["params total", f"{spec.params_total:,} ({_billions(spec.params_total)})"],
    ]
    if spec.moe is not None:
        m = spec.moe
        rows += [
            ["params active", f"{spec.params_active:,} ({_billions(spec.params_active)})"],
            [
                "experts",
                f"{m.n_experts} routed, {m.experts_per_token} per token, "
                f"{m.shared_experts} shared, width {m.expert_ffn}",
            ],
            ["dense layers", f"first {m.first_dense_layers}, MoE every {m.interleave_step}"],
        ]
    rows += [
        ["layers / hidden", f"{spec.n_layers} / {spec.hidden_size}"],
        ["FFN width", spec.intermediate_size if spec.intermediate_size else "-"],
        ["heads / KV heads", f"{spec.n_heads} / {spec.n_kv_heads}"],
        ["head dim", spec.head_dim],
        ["vocabulary", f"{spec.vocab_size:,}"],
        ["tied embeddings", "yes" if spec.tie_word_embeddings else "no"],
        ["max context", _ctx(spec)],
        ["attention", _attention(spec)],
    ]
    if a.kind == "sliding":
        rows.append(["windowed layers", ",".join(map(str, a.sliding_layers))])
    if a.kind == "mla":
        rows.append(
            [
                "MLA",
                f"kv_lora {a.mla_kv_lora_rank}, rope {a.mla_qk_rope_head_dim}, "
                f"nope {a.mla_qk_nope_head_dim}, v {a.mla_v_head_dim}, "
                f"q_lora {a.mla_q_lora_rank or '-'}",
            ]
        )
    if a.kind == "hybrid":
        rows.append(["attention layers", ",".join(map(str, a.attention_layers))])
        state = a.recurrent_state_bytes_per_seq
        rows.append(
            [
                "recurrent state",
                "unknown"
                if state is None
                else f"{state:,} B per sequence ({state / 2**20:.1f} MiB)",
            ]
        )
    rows += [
        ["license", _license(spec)],
        ["release", spec.release_date or "unknown"],
        [
            "formats",
            ", ".join(spec.formats)
            + (f" (native {spec.native_quant})" if spec.native_quant else ""),
        ],
    ]
    if spec.gguf_file_type:
        rows.append(["GGUF file type", spec.gguf_file_type])
    if spec.tensors:
        total = sum(t.n_bytes for t in spec.tensors)
        rows.append(["tensors", f"{len(spec.tensors)} ({total:,} B = {total / 2**30:.2f} GiB)"])
    unknown = spec.extra.get("unknown")
    if isinstance(unknown, dict):
        for key, reason in unknown.items():
            rows.append([f"unknown: {key}", reason])
    rows += [["origin", spec.origin], ["source", spec.source]]
    if spec.notes:
        rows.append(["notes", spec.notes])
    print_table(["field", "value"], rows)


def _show(args: argparse.Namespace) -> int:
    from models_db import spec_to_dict

    spec = find_model(args.id)
    if args.json:
        print_json({"model": spec_to_dict(spec)})
    else:
        _print_spec(spec)
    return 0


# ---------------------------------------------------------------- import


def _progress(message: str) -> None:
    """Network imports report each step on stderr (stdout stays the result, also for --json)."""
    print(message, file=sys.stderr, flush=True)


def _do_import(args: argparse.Namespace) -> ModelSpec:
    from models_db.importers import import_ollama_model

    if args.ollama:
        if args.path:
            raise ForgePlannerError("give either PATH or --ollama NAME, not both")
        return import_ollama_model(args.ollama, url=args.url, model_id=args.model_id)
    if not args.path:
        raise ForgePlannerError("models import needs PATH or --ollama NAME")
    if args.path.lower().startswith("hf:"):
        from models_db.importers.hf_hub import import_hf_repo

        return import_hf_repo(
            args.path, gguf_file=args.gguf_file, model_id=args.model_id, progress=_progress
        )
    if args.path.lower().startswith("ollama:"):
        from models_db.importers.ollama_registry import import_ollama_registry

        return import_ollama_registry(args.path, model_id=args.model_id, progress=_progress)
    spec, _kind = read_model_file(Path(args.path), model_id=args.model_id)
    return spec


def _import(args: argparse.Namespace) -> int:
    spec = _do_import(args)
    saved_as = None if args.no_save else save_user_model(spec, replace=args.replace)
    if args.json:
        from models_db import spec_to_dict

        print_json(
            {"model": spec_to_dict(spec), "saved": saved_as is not None, "saved_as": saved_as}
        )
        return 0
    _print_spec(spec)
    if saved_as:
        print(f"\nsaved to your model database as '{saved_as}'")
    return 0
