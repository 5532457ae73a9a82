"""Importers: a local HF config.json, a local GGUF file, an Ollama /api/show response.

Each returns a ModelSpec or raises one DataError(file, field, value, problem)."""

from models_db.importers.gguf_file import import_gguf
from models_db.importers.hf_config import import_hf_config
from models_db.importers.ollama_show import (
    DEFAULT_OLLAMA_URL,
    import_ollama_model,
    import_ollama_show,
)

__all__ = [
    "DEFAULT_OLLAMA_URL",
    "import_gguf",
    "import_hf_config",
    "import_ollama_model",
    "import_ollama_show",
]
