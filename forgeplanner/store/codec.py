"""ModelSpec <-> JSON-safe dict, for storing user models.

Hand-written because the domain types are frozen dataclasses with nested frozen dataclasses
and tuples: `dataclasses.asdict` gets us to JSON, but coming back needs the tuples and the
nested types rebuilt, and unknown keys (from a newer app) must not crash an older one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from forgeplanner.domain.model import (
    AttentionSpec,
    ModelSpec,
    MoESpec,
    PerLayerEmbeddingSpec,
    RecurrentSpec,
    TensorInfo,
)


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _tuplify_known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    return {k: _tuplify(v) for k, v in _known(cls, data).items()}


def model_to_json(spec: ModelSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def model_from_json(data: dict[str, Any]) -> ModelSpec:
    d = _known(ModelSpec, dict(data))
    att = _known(AttentionSpec, dict(d["attention"]))
    rec = att.pop("recurrent", None)
    d["attention"] = AttentionSpec(
        **{k: (_tuplify(v) if isinstance(v, list) else v) for k, v in att.items()},
        recurrent=None if rec is None else RecurrentSpec(**_tuplify_known(RecurrentSpec, rec)),
    )
    ple = d.pop("per_layer_embedding", None)
    if ple is not None:
        d["per_layer_embedding"] = PerLayerEmbeddingSpec(**_known(PerLayerEmbeddingSpec, ple))
    if "aliases" in d:
        d["aliases"] = tuple(d["aliases"])
    if d.get("moe") is not None:
        d["moe"] = MoESpec(**_known(MoESpec, d["moe"]))
    d["tensors"] = tuple(
        TensorInfo(
            name=t["name"], shape=tuple(t["shape"]), ggml_type=t["ggml_type"], n_bytes=t["n_bytes"]
        )
        for t in d.get("tensors", ())
    )
    if "formats" in d:
        d["formats"] = tuple(d["formats"])
    d["extra"] = dict(d.get("extra") or {})
    return ModelSpec(**d)
