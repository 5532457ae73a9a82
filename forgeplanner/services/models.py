"""Models by id, and the user's own models: finding a model for `--model ID`, recognising and
reading an import file, saving an imported model to the user database, listing the saved ones.

Shared by every command that takes a model id, `forgeplanner models import|list|show` and the
desktop app's Models view, so all of them accept and refuse the same ids and files with the
same one-line error and save under the same rule. (`models_db` cannot hold this: it depends
only on the domain, and saving needs the store.) Heavy imports stay inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forgeplanner.errors import DataError, NotFoundError

if TYPE_CHECKING:
    from forgeplanner.domain.model import ModelSpec

MAX_JSON_BYTES = 64 * 1024 * 1024  # a config.json or /api/show reply is kilobytes


def find_model(model_id: str) -> ModelSpec:
    """The model with this id, Hugging Face repo id or alias (any case: "Qwen3-Coder-30B-A3B",
    "llama3.3:70b"): the shipped model database first, then the user's imported models (an
    import is never saved under a shipped id, see `save_user_model`, so shipped ids win).
    NotFoundError lists the valid ids, shipped ones first."""
    from models_db import load_models
    from models_db.loader import name_key, names_of

    db = load_models()
    if model_id in db:
        return db.get(model_id)
    users = {name_key(n): m for m in list_user_models() for n in names_of(m)}
    if name_key(model_id) in users:
        return users[name_key(model_id)]
    valid = [m.id for m in db.all()] + sorted({m.id for m in users.values()})
    raise NotFoundError("model", model_id, valid)


def detect_kind(path: Path) -> str:
    """'config' | 'gguf' | 'ollama' for a file or directory given to an import."""
    from forgeplanner import jsonio
    from forgeplanner.fileio import check_regular_input, read_input

    name = str(path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return "config"
        raise DataError(name, "(path)", name, "directory without a config.json")
    check_regular_input(path, "model file")  # a FIFO or /dev/zero: refused, never opened
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DataError(name, "(file)", name, f"cannot read: {exc.strerror or exc}") from None
    if head == b"GGUF":
        return "gguf"
    if path.suffix.lower() == ".gguf":
        raise DataError(name, "magic", head, "a .gguf file must start with b'GGUF'")
    try:
        data = jsonio.loads(read_input(path, MAX_JSON_BYTES, "JSON model description"), name)
    except DataError as exc:
        if exc.field == "(file)":
            raise
        raise DataError(
            name, exc.field, exc.value, f"neither GGUF nor JSON: {exc.problem}"
        ) from None
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


def save_user_model(spec: ModelSpec, replace: bool = False) -> str:
    """Save to the user database and return the id it was saved under: a shipped model's id
    is never shadowed (the import is saved as `<id>-import`), and a model already saved under
    that id is kept unless `replace` (a second import of another file with the same name used
    to overwrite the first silently)."""
    import dataclasses

    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.store import Store, UserModelRepo
    from models_db import load_models, spec_from_dict, spec_to_dict

    if spec.id in load_models():
        spec = dataclasses.replace(spec, id=f"{spec.id}-import")
    # Round-trip through the validating schema: what is saved must load again.
    spec_from_dict(spec_to_dict(spec), file="(import)")
    with Store().session() as s:
        repo = UserModelRepo(s)
        if not replace and repo.get(spec.id) is not None:
            origin = repo.origins().get(spec.id, "an earlier import")
            raise ForgePlannerError(
                f"your model database already has '{spec.id}' ({origin}); nothing saved: pass "
                "--replace to overwrite it, or --id NEW_ID to keep both"
            )
        repo.save(spec)
    return spec.id


def list_user_models() -> list[ModelSpec]:
    """The models the user imported and saved, from the user database."""
    from forgeplanner.store import Store, UserModelRepo

    with Store().session() as s:
        return UserModelRepo(s).list()
