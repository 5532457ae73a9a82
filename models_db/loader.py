"""Load the shipped model database (models_db/data/models.toml) into ModelSpecs."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import DataError, NotFoundError
from models_db.schema import spec_from_dict

DATA_FILE = Path(__file__).parent / "data" / "models.toml"


def name_key(name: str) -> str:
    """How a typed model name is compared: case-insensitive, surrounding blanks ignored."""
    return name.strip().lower()


def names_of(spec: ModelSpec) -> tuple[str, ...]:
    """Every name a model answers to: its id, its Hugging Face repo and its aliases."""
    return tuple(n for n in (spec.id, spec.hf_repo, *spec.aliases) if n.strip())


class ModelDB:
    """The shipped models, in file order. Immutable; get one with `load_models()`.

    A model is found by its id, its Hugging Face repo id or any alias ("Qwen3-Coder-30B-A3B",
    "llama3.3:70b", "Qwen/Qwen3-Coder-30B-A3B-Instruct"), case-insensitively; `get` returns the
    model itself (whose `id` is the canonical one)."""

    def __init__(self, models: tuple[ModelSpec, ...], file: str = str(DATA_FILE)) -> None:
        self._models = models
        self._by_id = {m.id: m for m in models}
        self._by_name: dict[str, ModelSpec] = {}
        for m in models:
            for name in names_of(m):
                self._by_name.setdefault(name_key(name), m)
        self.file = file

    def resolve(self, name: str) -> ModelSpec | None:
        """The model that `name` (id, HF repo id or alias, any case) names, or None."""
        found = self._by_id.get(name)
        return found if found is not None else self._by_name.get(name_key(name))

    def get(self, model_id: str) -> ModelSpec:
        found = self.resolve(model_id)
        if found is None:
            raise NotFoundError("model", model_id, self.ids())
        return found

    def all(self) -> tuple[ModelSpec, ...]:
        return self._models

    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and self.resolve(model_id) is not None

    def __len__(self) -> int:
        return len(self._models)


def read_models_file(path: Path) -> ModelDB:
    """Parse and validate a models TOML file; any problem is one DataError (file, field, value)."""
    import tomllib  # here: a run served by the data cache never parses TOML

    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(name, "(file)", name, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(name, "(file)", exc.object[exc.start : exc.end], "not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(name, "(syntax)", str(exc), "not valid TOML") from None
    entries = data.get("models")
    if not isinstance(entries, list) or not entries:
        raise DataError(name, "models", entries, "expected one or more [[models]] tables")
    models: list[ModelSpec] = []
    seen: set[str] = set()
    owner: dict[str, str] = {}  # name key -> id of the model that answers to it
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(name, f"models[{i}]", entry, "must be a table")
        where = str(entry.get("id", f"models[{i}]"))
        spec = spec_from_dict(entry, name, where)
        if spec.id in seen:
            raise DataError(name, f"{where}.id", spec.id, "duplicate model id")
        seen.add(spec.id)
        for alias in names_of(spec):
            other = owner.setdefault(name_key(alias), spec.id)
            if other != spec.id:
                raise DataError(name, f"{where}.aliases", alias, f"also names model {other!r}")
        models.append(spec)
    return ModelDB(tuple(models), name)


# Between runs the application may keep the validated database (forgeplanner.services.datacache
# installs one): a callable (name, data files, build) -> the value build() makes from them.
_persistent: Callable[[str, list[Path], Callable[[], ModelDB]], ModelDB] | None = None


def set_persistent_cache(cache: Callable[..., ModelDB] | None) -> None:
    global _persistent
    _persistent = cache


@cache
def load_models() -> ModelDB:
    """The shipped model database, parsed once per process."""
    if _persistent is None:
        return read_models_file(DATA_FILE)
    return _persistent("models", [DATA_FILE], lambda: read_models_file(DATA_FILE))
