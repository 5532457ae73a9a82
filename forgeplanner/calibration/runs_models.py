"""Map a source's model name to a model database id.

In order: the curated table (model_names.csv: names that need a judgement, such as
llama-bench's "llama 7B Q4_0", or that are not in the database, with the reason), then the id
the first held-out table already gave the row, then the database's own ids, HF repos and
aliases (models.csv) matched after removing what only names the file (organisation,
quantization, "-GGUF", "-Instruct" ...). A name that matches nothing keeps model_id empty and
says so; nothing is mapped by similarity alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeplanner.calibration.runs_lookups import Lookups, ModelEntry, ModelName


@dataclass(frozen=True)
class ModelMatch:
    model_id: str
    mapping: str  # how: "curated: ...", "held-out table", "database name", or why unmapped


# Words that name the file, the packaging or the chat tuning, not the model.
_NOISE = re.compile(
    r"(?i)\b(?:gguf|mlx|instruct|it|chat|hf|community|lmstudio|qat|dwq|ud|bf16|fp16|f16|f32|"
    r"mxfp4|mxfp8|nvfp4|int4|q\d|\d(?:\.\d)?-?bit|\d+bit|mostly|latest|all)\b"
)
# Quantization names, llama-bench's "Q4_K - Medium", bits-per-weight notes.
_QUANT = re.compile(
    r"(?i)\b(?:ud-)?i?q\d(?:_[a-z0-9]+)*(?: - (?:medium|small|large|[\d.]+ bpw))?\b"
    r"|\b[\d.]+ bpw\b|\bq\d_k\b"
)
# HF organisations that some uploaders put in front of the file name with an underscore.
_ORG_PREFIX = re.compile(
    r"(?i)^(?:google|mistralai|nvidia|qwen|huggingfacetb|microsoft|meta-llama|arcee-ai|baidu|"
    r"ibm-granite|deepseek-ai|zai-org|thudm|openai|lgai-exaone|tiiuae)_"
)


def name_key(text: str) -> str:
    """A comparable key: organisation, extension, quantization and packaging words removed."""
    t = text.strip().lower()
    t = re.sub(r"\(.*?\)", " ", t)
    t = t.rsplit("/", 1)[-1]
    t = re.sub(r"\.gguf$", "", t)
    t = _ORG_PREFIX.sub("", t)
    t = _QUANT.sub(" ", t)
    t = t.replace("meta-llama-", "llama-").replace("meta llama ", "llama ")
    t = re.sub(r"\b(qwen|llama|gemma|phi|olmo|mistral) (\d)", r"\1\2", t)
    t = re.sub(r"\b(qwen|gemma|phi|olmo)-(\d)", r"\1\2", t)
    t = re.sub(r"\bllama(\d)", r"llama-\1", t)
    t = re.sub(r"[_\s]+", "-", t)
    parts = [p for p in re.split(r"-+", t) if p and not _NOISE.fullmatch(p)]
    return "-".join(parts)


def _tag_key(text: str) -> tuple[str, str]:
    """An Ollama tag 'qwen2.5:14b-instruct-q4_K_M (4bit)' -> ('qwen2.5:14b', 'qwen2.5').

    The second value is the bare model name, for tags without a size ('glm-4.7-flash:q8_0').
    """
    t = re.sub(r"\(.*?\)", "", text).strip().lower()
    t = re.sub(r"\s+(?=[\d.]+:)", "", t)  # "Llama 3.1:70b" -> "llama3.1:70b"
    if ":" not in t or " " in t or "/" in t:
        return "", ""
    name, _, tag = t.partition(":")
    size = re.match(r"(?:\d+x)?[\d.]+b\b|e\d+b", tag)
    return (f"{name}:{size.group(0)}" if size else ""), name


class ModelMatcher:
    def __init__(self, lookups: Lookups) -> None:
        self.models = {m.id: m for m in lookups.models}
        self.curated: dict[str, list[ModelName]] = {}
        for n in lookups.model_names:
            self.curated.setdefault(n.model_name.strip().lower(), []).append(n)
        self._cache: dict[tuple[str, str, str, str], ModelMatch] = {}
        self.index: dict[str, set[str]] = {}
        self.tags: dict[str, str] = {}
        for m in lookups.models:
            for alias in (m.id, m.hf_repo, *m.aliases):
                if not alias:
                    continue
                if ":" in alias and "/" not in alias:
                    self.tags[alias.lower()] = m.id
                    continue
                self.index.setdefault(name_key(alias), set()).add(m.id)

    def entry(self, model_id: str) -> ModelEntry | None:
        return self.models.get(model_id)

    def _curated(self, model_name: str, hf_repo: str, params_b: str) -> ModelName | None:
        best = None
        for entry in self.curated.get(model_name.strip().lower(), []):
            if entry.hf_repo and entry.hf_repo.lower() != hf_repo.strip().lower():
                continue
            if entry.params_b and entry.params_b != params_b.strip():
                continue
            # The entry that names more of the row wins.
            if best is None or bool(entry.hf_repo) + bool(entry.params_b) > bool(
                best.hf_repo
            ) + bool(best.params_b):
                best = entry
        return best

    def match(self, model_name: str, hf_repo: str, params_b: str, hint: str) -> ModelMatch:
        key = (model_name, hf_repo, params_b, hint)
        if key not in self._cache:
            self._cache[key] = self._match(model_name, hf_repo, params_b, hint)
        return self._cache[key]

    def _match(self, model_name: str, hf_repo: str, params_b: str, hint: str) -> ModelMatch:
        curated = self._curated(model_name, hf_repo, params_b)
        if curated is not None:
            if curated.model_id:
                return ModelMatch(curated.model_id, f"curated: {curated.mapping}; {curated.note}")
            return ModelMatch("", f"unmapped: {curated.note}")
        found = self._by_name(model_name, hf_repo)
        if found.model_id or not (hint and hint in self.models):
            return found
        return ModelMatch(hint, "held-out table's mapping")

    def _by_name(self, model_name: str, hf_repo: str) -> ModelMatch:
        for text in (hf_repo, model_name):
            if not text:
                continue
            tag, bare = _tag_key(text)
            if tag and tag in self.tags:
                return ModelMatch(self.tags[tag], "database Ollama tag")
            if bare and not tag:
                ids = self.index.get(name_key(bare), set())
                if len(ids) == 1:
                    return ModelMatch(next(iter(ids)), "database name (Ollama tag without size)")
            ids = self.index.get(name_key(text), set())
            if len(ids) == 1:
                return ModelMatch(next(iter(ids)), "database name")
            if len(ids) > 1:
                return ModelMatch("", "unmapped: name fits several ids " + "/".join(sorted(ids)))
        return ModelMatch("", "unmapped: name not in the model database")
