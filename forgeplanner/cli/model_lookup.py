"""`--model ID` for every command: the shipped model database, then the user's own models.

`forgeplanner models import` saves a model to the user database and `models list|show` show
it, so a command that takes `--model ID` must accept that id too (found by the acceptance
audit: `estimate --model <imported id>` said "unknown model"). Shipped ids win; an import is
never saved under a shipped id (forgeplanner.user_models.save_user_model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forgeplanner.domain.model import ModelSpec


def find_model(model_id: str) -> ModelSpec:
    """The model with this id, Hugging Face repo id or alias (any case: "Qwen3-Coder-30B-A3B",
    "llama3.3:70b"); NotFoundError (listing the valid ids) when there is none."""
    from models_db import load_models

    db = load_models()
    if model_id in db:
        return db.get(model_id)
    from forgeplanner.errors import NotFoundError
    from forgeplanner.user_models import list_user_models
    from models_db.loader import name_key, names_of

    users = {name_key(n): m for m in list_user_models() for n in names_of(m)}
    if name_key(model_id) in users:
        return users[name_key(model_id)]
    valid = [m.id for m in db.all()] + sorted({m.id for m in users.values()})
    raise NotFoundError("model", model_id, valid)
