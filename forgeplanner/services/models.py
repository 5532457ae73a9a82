"""Models by id, and the user's own models: finding a model for `--model ID`, recognising and
reading an import file, saving an imported model to the user database, listing the saved ones.

Shared by every command that takes a model id, `forgeplanner models import|list|show` and the
desktop app's Models view, so all of them accept and refuse the same ids and files with the
same one-line error and save under the same rule. (`models_db` cannot hold this: it depends
only on the domain, and saving needs the store.) Heavy imports stay inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from forgeplanner.errors import DataError, NotFoundError

if TYPE_CHECKING:
    from forgeplanner.domain.model import ModelSpec

MAX_JSON_BYTES = 64 * 1024 * 1024  # a config.json or /api/show reply is kilobytes


def find_model(model_id: str) -> ModelSpec:
    """The model with this id: the shipped model database first, then the user's imported
    models (an import is never saved under a shipped id, see `save_user_model`, so shipped ids
    win). NotFoundError lists the valid ids, shipped ones first."""
    from models_db import load_models

    db = load_models()
    if model_id in db:
        return db.get(model_id)
    users = {m.id: m for m in list_user_models()}
    if model_id in users:
        return users[model_id]
    valid = [m.id for m in db.all()] + sorted(users)
    raise NotFoundError("model", model_id, valid)


def detect_kind(path: Path) -> str:
    """'config' | 'gguf' | 'ollama' for a file or directory given to an import."""
    name = str(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return "config"
        raise DataError(name, "(path)", name, "directory without a config.json")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DataError(name, "(file)", name, f"cannot read: {exc.strerror or exc}") from None
    if head == b"GGUF":
        return "gguf"
    if path.suffix.lower() == ".gguf":
        raise DataError(name, "magic", head, "a .gguf file must start with b'GGUF'")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DataError(name, "(file)", path.stat().st_size, "too large for a JSON description")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DataError(name, "(file)", head, "neither GGUF nor JSON") from None
    if isinstance(data, dict) and ("model_info" in data or "modelinfo" in data):
        return "ollama"
    if isinstance(data, dict) and ("model_type" in data or "architectures" in data):
        return "config"
    raise DataError(
        name,
        "(top level)",
        type(data).__name__,
        "JSON is neither a config.json (model_type) nor an Ollama /api/show reply (model_info)",
    )


def read_model_file(
    path: Path, model_id: str | None = None, kind: str | None = None
) -> tuple[ModelSpec, str]:
    """(spec, kind) of a config.json (or a directory holding one), a GGUF file or a saved
    Ollama /api/show reply; DataError for anything else. Reads headers only, never weights.
    `kind` is `detect_kind(path)` when the caller already has it."""
    from models_db.importers import import_gguf, import_hf_config, import_ollama_show

    kind = kind or detect_kind(path)
    if kind == "gguf":
        return import_gguf(path, model_id=model_id), kind
    if kind == "ollama":
        return import_ollama_show(path, model_id=model_id), kind
    return import_hf_config(path, model_id=model_id), kind


def save_user_model(spec: ModelSpec) -> str:
    """Save to the user database and return the id it was saved under: a shipped model's id
    is never shadowed (the import is saved as `<id>-import`)."""
    import dataclasses

    from forgeplanner.store import Store, UserModelRepo
    from models_db import load_models, spec_from_dict, spec_to_dict

    if spec.id in load_models():
        spec = dataclasses.replace(spec, id=f"{spec.id}-import")
    # Round-trip through the validating schema: what is saved must load again.
    spec_from_dict(spec_to_dict(spec), file="(import)")
    with Store().session() as s:
        UserModelRepo(s).save(spec)
    return spec.id


def list_user_models() -> list[ModelSpec]:
    """The models the user imported and saved, from the user database."""
    from forgeplanner.store import Store, UserModelRepo

    with Store().session() as s:
        return UserModelRepo(s).list()
