"""The curated lookup tables the normalisation reads (data/lookups/*.csv).

Each table carries its own provenance column; data/README.md says where each one came from.
They are loaded once into small frozen structures so the normalisers stay plain functions.
"""

from __future__ import annotations

import bisect
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from forgeplanner.calibration.runs_inputs import read_table
from forgeplanner.errors import DataError


def _ints(text: str) -> frozenset[int]:
    return frozenset(int(x) for x in text.split(";") if x.strip())


@dataclass(frozen=True)
class ChipBin:
    chip: str
    gpu_cores: int
    product: str
    memory_gb: frozenset[int]
    # Sizes widely reported for this bin but not read in a source: they may exist, so they
    # count as possible when deciding whether a memory size pins the GPU bin.
    memory_gb_unconfirmed: frozenset[int]
    bandwidth_gbps: float | None
    # The chip's first announcement: no run on it can predate this.
    chip_announced: str


@dataclass(frozen=True)
class LlamaCppBuild:
    build: int
    commit: str
    date: str
    # "month-start" (first build of its month), "referenced", "history-end"; several with ';'.
    kind: str


@dataclass(frozen=True)
class VersionDate:
    version: tuple[int, ...]
    text: str
    date: str


@dataclass(frozen=True)
class OllamaEngineRule:
    """From this Ollama version on (until the next row), how a GGUF model is run."""

    version: tuple[int, ...]
    text: str
    date: str
    # GGUF architectures that Ollama's own engine runs ("OllamaEngineRequired").
    ollama_engine_archs: frozenset[str]
    # "llama.cpp-runner or ollama-engine by architecture", or "llama-server" (0.30+).
    gguf_runner: str


@dataclass(frozen=True)
class ModelEntry:
    id: str
    family: str
    hf_repo: str
    params_total_b: float | None
    params_active_b: float | None
    gguf_arch: str
    aliases: tuple[str, ...]


# How a curated name maps: the same model; another checkpoint with identical tensor shapes
# (a fine-tune, a distill, an earlier version); or the likely model when a tool printed only
# an architecture and a size (llama-bench's "llama 3B").
MAPPINGS = ("exact", "same-architecture", "inferred")


@dataclass(frozen=True)
class ModelName:
    """A curated mapping of one source model name (and optionally its HF repo) to an id."""

    model_name: str
    hf_repo: str  # empty: any
    params_b: str  # empty: any; else the source's printed parameter count must equal it
    model_id: str
    mapping: str
    note: str


@dataclass(frozen=True)
class RowFlag:
    """A reader's judgement on input rows: one row id, or a glob ('peer-mlb-*') narrowed by
    chip and runtime (empty: any)."""

    input_file: str
    input_row_id: str
    chip: str
    runtime: str
    exclude_reason: str
    note: str

    def matches(self, input_file: str, row_id: str, chip: str, runtime: str) -> bool:
        return (
            input_file == self.input_file
            and fnmatch.fnmatchcase(row_id, self.input_row_id)
            and (not self.chip or chip == self.chip)
            and (not self.runtime or runtime == self.runtime)
        )


def parse_version(text: str) -> tuple[int, ...]:
    """'0.31.3' -> (0, 31, 3); '0.30.0-rc31' -> (0, 30, 0); '0.24' -> (0, 24)."""
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    parts = []
    for piece in core.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


@dataclass(frozen=True)
class Lookups:
    chip_bins: tuple[ChipBin, ...]
    llamacpp_builds: tuple[LlamaCppBuild, ...]
    mlx_lm_versions: tuple[VersionDate, ...]
    mlx_versions: tuple[VersionDate, ...]
    ollama_rules: tuple[OllamaEngineRule, ...]
    # Architectures Ollama has run only on its own engine, from the version that added them.
    ollama_engine_only: dict[str, tuple[int, ...]]
    models: tuple[ModelEntry, ...]
    model_names: tuple[ModelName, ...]
    row_flags: tuple[RowFlag, ...]
    _by_commit: dict[str, LlamaCppBuild] = field(default_factory=dict, compare=False)
    _by_build: dict[int, LlamaCppBuild] = field(default_factory=dict, compare=False)
    _month_starts: list[int] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        for b in self.llamacpp_builds:
            if b.commit:
                self._by_commit[b.commit[:7]] = b
            self._by_build[b.build] = b
        self._month_starts.extend(
            sorted(b.build for b in self.llamacpp_builds if "month-start" in b.kind)
        )

    def build_of_commit(self, commit: str) -> LlamaCppBuild | None:
        return self._by_commit.get(commit[:7].lower())

    def llamacpp_date(self, build: int) -> tuple[str, str]:
        """(date, basis) of a build number: the day when listed, else its month.

        The month follows from the first build of each month: a build at or after the first
        build of month M and before the first build of the next month was made in month M.
        Builds after the end of the history read have no date here.
        """
        if build in self._by_build:
            return self._by_build[build].date, "llama.cpp git history (date of that build)"
        starts = self._month_starts
        i = bisect.bisect_right(starts, build) - 1
        if i < 0 or i + 1 >= len(starts):
            return "", ""
        month = self._by_build[starts[i]].date[:7]
        return month, "llama.cpp git history (month of that build)"

    def bins_of(self, chip: str) -> list[ChipBin]:
        return [b for b in self.chip_bins if b.chip == chip]


def _version_table(path: Path, required: tuple[str, ...]) -> tuple[VersionDate, ...]:
    frame = read_table(path, required)
    out = [
        VersionDate(parse_version(r["version"]), r["version"], r["date"])
        for r in frame.to_dict("records")
    ]
    return tuple(sorted(out, key=lambda v: v.version))


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def load_lookups(lookups_dir: Path) -> Lookups:
    bins_frame = read_table(
        lookups_dir / "chip_bins.csv",
        (
            "chip",
            "gpu_cores",
            "product",
            "memory_gb",
            "memory_gb_unconfirmed",
            "bandwidth_gbps",
            "chip_announced",
        ),
    )
    bins = tuple(
        ChipBin(
            r["chip"],
            int(r["gpu_cores"]),
            r["product"],
            _ints(r["memory_gb"]),
            _ints(r["memory_gb_unconfirmed"]),
            _float(r["bandwidth_gbps"]),
            r["chip_announced"],
        )
        for r in bins_frame.to_dict("records")
    )
    builds_frame = read_table(
        lookups_dir / "llamacpp_builds.csv", ("build", "commit", "date", "kind")
    )
    builds = tuple(
        LlamaCppBuild(int(r["build"]), r["commit"].lower(), r["date"], r["kind"])
        for r in builds_frame.to_dict("records")
    )
    versions = read_table(lookups_dir / "runtime_versions.csv", ("package", "version", "date"))
    tables: dict[str, list[VersionDate]] = {"mlx-lm": [], "mlx": []}
    for r in versions.to_dict("records"):
        if r["package"] not in tables:
            raise DataError("runtime_versions.csv", "package", r["package"], "unknown package")
        tables[r["package"]].append(
            VersionDate(parse_version(r["version"]), r["version"], r["date"])
        )
    ollama_frame = read_table(
        lookups_dir / "ollama_engines.csv",
        ("version", "date", "ollama_engine_archs", "gguf_runner"),
    )
    ollama = tuple(
        sorted(
            (
                OllamaEngineRule(
                    parse_version(r["version"]),
                    r["version"],
                    r["date"],
                    frozenset(a for a in r["ollama_engine_archs"].split(";") if a),
                    r["gguf_runner"],
                )
                for r in ollama_frame.to_dict("records")
            ),
            key=lambda rule: rule.version,
        )
    )
    only_frame = read_table(lookups_dir / "ollama_engine_only.csv", ("arch", "since_version"))
    engine_only = {
        r["arch"]: parse_version(r["since_version"]) for r in only_frame.to_dict("records")
    }
    models_frame = read_table(
        lookups_dir / "models.csv",
        ("id", "family", "hf_repo", "params_total_b", "params_active_b", "gguf_arch", "aliases"),
    )
    models = tuple(
        ModelEntry(
            r["id"],
            r["family"],
            r["hf_repo"],
            _float(r["params_total_b"]),
            _float(r["params_active_b"]),
            r["gguf_arch"],
            tuple(a for a in r["aliases"].split(";") if a),
        )
        for r in models_frame.to_dict("records")
    )
    ids = {m.id for m in models}
    names_frame = read_table(
        lookups_dir / "model_names.csv",
        ("model_name", "hf_repo", "params_b", "model_id", "mapping", "note"),
    )
    names = []
    for r in names_frame.to_dict("records"):
        if r["model_id"] and r["model_id"] not in ids:
            raise DataError("model_names.csv", "model_id", r["model_id"], "not in models.csv")
        if not r["model_id"] and not r["note"]:
            raise DataError(
                "model_names.csv", "note", r["model_name"], "unmapped name needs a note"
            )
        if r["model_id"] and r["mapping"] not in MAPPINGS:
            raise DataError("model_names.csv", "mapping", r["mapping"], f"not one of {MAPPINGS}")
        names.append(
            ModelName(
                r["model_name"], r["hf_repo"], r["params_b"], r["model_id"], r["mapping"], r["note"]
            )
        )
    flags_frame = read_table(
        lookups_dir / "row_flags.csv",
        ("input_file", "input_row_id", "chip", "runtime", "exclude_reason", "note"),
    )
    flags = tuple(
        RowFlag(
            r["input_file"],
            r["input_row_id"],
            r["chip"],
            r["runtime"],
            r["exclude_reason"],
            r["note"],
        )
        for r in flags_frame.to_dict("records")
    )
    return Lookups(
        chip_bins=bins,
        llamacpp_builds=tuple(sorted(builds, key=lambda b: b.build)),
        mlx_lm_versions=tuple(sorted(tables["mlx-lm"], key=lambda v: v.version)),
        mlx_versions=tuple(sorted(tables["mlx"], key=lambda v: v.version)),
        ollama_rules=ollama,
        ollama_engine_only=engine_only,
        models=models,
        model_names=tuple(names),
        row_flags=flags,
    )
