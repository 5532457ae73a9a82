"""Model database: reviewed data file with sources + loader + importers.

from models_db import load_models
db = load_models()            # cached ModelDB
db.get("llama-3.1-8b")        # ModelSpec, NotFoundError listing valid ids
db.all(); db.ids()
"""

from models_db.loader import ModelDB, load_models, read_models_file
from models_db.schema import spec_from_dict, spec_to_dict

__all__ = ["ModelDB", "load_models", "read_models_file", "spec_from_dict", "spec_to_dict"]
