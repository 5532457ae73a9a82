"""Import a model file (config.json, GGUF, Ollama /api/show JSON) as a progress generator.

Qt-free: the Models view runs it in a worker thread. It uses the same detection, importers and
save rule as `forgeplanner models import`, so the GUI and the CLI accept and refuse the same
files with the same one-line DataError.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ImportProgress:
    path: str
    step: str  # "detect" | "read" | "save"


@dataclass(frozen=True)
class ImportResult:
    spec: Any  # ModelSpec
    kind: str  # "config" | "gguf" | "ollama"
    saved_as: str


def import_model_job(path: str | Path, save: bool = True):
    """`job(token)` for ui.workers.start_worker."""

    def job(token: Any) -> Generator[ImportProgress, None, ImportResult | None]:
        from forgeplanner.services.models import detect_kind, read_model_file, save_user_model

        p = Path(path)
        yield ImportProgress(str(p), "detect")
        kind = detect_kind(p)
        if token.cancelled:
            return None
        yield ImportProgress(str(p), "read")
        spec, kind = read_model_file(p, kind=kind)
        if token.cancelled:
            return None
        saved_as = spec.id
        if save:
            yield ImportProgress(str(p), "save")
            # The CLI's save rule: a catalog id is never shadowed; what is saved must load.
            saved_as = save_user_model(spec)
        return ImportResult(spec=spec, kind=kind, saved_as=saved_as)

    return job


def import_ollama_job(model: str, url: str, save: bool = True):
    """`job(token)` importing `model` from a running Ollama at `url` (localhost by default)."""

    def job(token: Any) -> Generator[ImportProgress, None, ImportResult | None]:
        from forgeplanner.services.models import save_user_model
        from models_db.importers import import_ollama_model

        where = f"{url} ({model})"
        yield ImportProgress(where, "read")
        spec = import_ollama_model(model, url=url)
        if token.cancelled:
            return None
        saved_as = spec.id
        if save:
            yield ImportProgress(where, "save")
            saved_as = save_user_model(spec)
        return ImportResult(spec=spec, kind="ollama", saved_as=saved_as)

    return job


def user_models() -> list[Any]:
    """The user's imported models from the store."""
    from forgeplanner.services.models import list_user_models

    return list(list_user_models())
