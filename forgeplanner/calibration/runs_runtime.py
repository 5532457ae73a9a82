"""Runtime, its version/build, engine and era date of a published run, normalised.

- llama.cpp: the build number bNNNN. A printed build is taken as printed; a commit is mapped
  to its build with llama.cpp's own rule (the build number is the commit count,
  `git rev-list --count`), read from the project's git history (llamacpp_builds.csv). When
  both are printed and disagree, the commit's count wins and the note says so.
- MLX: the mlx-lm version (else the mlx core version). Engines built on MLX that are not
  mlx-lm (oMLX, Rapid-MLX, mlx-swift, mlx-vlm, exo, vllm-mlx ...) are runtime `other:<name>`.
- Ollama: the version, and the engine that ran the model: Ollama's GGUF runner was llama.cpp
  until 0.30 except for the architectures its own engine required (fs/ggml/ggml.go
  `OllamaEngineRequired` at each tag), llama-server for every GGUF model from 0.30, and the MLX
  runner for its MLX model tags (nvfp4, mxfp8, int4, "-mlx").
- `runtime_date` is the date of that build or version when the tables know it, else the
  measurement date; `runtime_date_basis` says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeplanner.calibration.runs_lookups import Lookups, VersionDate, parse_version

RUNTIMES = ("llama.cpp", "mlx", "ollama", "lmstudio-gguf", "lmstudio-mlx")


@dataclass(frozen=True)
class Runtime:
    runtime: str
    runtime_version: str
    llamacpp_build: int | None
    engine: str
    engine_basis: str
    runtime_date: str
    runtime_date_basis: str
    note: str


# MLX-based engines that are not mlx-lm, found in the version text, the test label or notes.
_MLX_WRAPPERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("other:rapid-mlx", re.compile(r"(?i)rapid-mlx")),
    ("other:omlx", re.compile(r"(?i)^omlx\b|via omlx|omlx built-in benchmark|omlx server")),
    ("other:mlx-swift", re.compile(r"(?i)mlx-swift|swift mlx")),
    ("other:mlx-vlm", re.compile(r"(?i)mlx-vlm \(pr branch|mlx-vlm text path|mlx_vlm\.generate")),
    ("other:exo", re.compile(r"(?i)^exo\b")),
    ("other:mlx-node", re.compile(r"(?i)@mlx-node")),
)


def _mlx_runtime(rv: str, test: str, notes: str) -> str:
    """mlx (mlx-lm) or the MLX-based wrapper that produced the number."""
    # A column that is the mlx-lm reference inside a wrapper's comparison stays mlx.
    if re.search(r"(?i)mlx-lm (reference )?column|mlx_lm\.benchmark|engine=mlx_lm", notes):
        return "mlx"
    for runtime, pattern in _MLX_WRAPPERS:
        if pattern.search(rv) or pattern.search(test):
            return runtime
    head = notes[:200]
    for runtime, pattern in _MLX_WRAPPERS:
        if pattern.search(head):
            return runtime
    return "mlx"


_COMMIT = re.compile(r"\b([0-9a-f]{7,12})\b")
_BUILD = re.compile(r"\bb(\d{3,5})\b|\((\d{3,5})\)|^(\d{3,5})\b")


def parse_llamacpp(rv: str) -> tuple[int | None, str, str]:
    """(printed build, first commit, fork/patch label) from a llama.cpp version text."""
    build = None
    if m := _BUILD.search(rv):
        build = int(next(g for g in m.groups() if g))
    commit = ""
    for m in _COMMIT.finditer(rv.lower()):
        token = m.group(1)
        # "b1579" and "(7948)" are builds; a commit may be all digits but has 7+ of them.
        if (token.startswith("b") and token[1:].isdigit()) or (token.isdigit() and len(token) < 7):
            continue
        commit = token
        break
    label = ""
    low = rv.lower()
    if "fork" in low:
        fork = re.search(r"fork ([\w.-]+/[\w.-]+)|(\w+) fork", rv)
        label = "fork " + (next(g for g in fork.groups() if g) if fork else "")
    elif re.search(r"\+\s*pr|pr #\d+ branch|\+pr\d+", low):
        pr = re.search(r"(?i)pr\s*#?(\d+)", rv)
        label = f"+PR #{pr.group(1)}" if pr else "+PR"
    return build, commit, label.strip()


def _llamacpp(rv: str, date: str, lookups: Lookups) -> tuple[str, int | None, str, str, str]:
    """(runtime_version, build, runtime_date, basis, note)."""
    printed, commit, label = parse_llamacpp(rv)
    build = printed
    note = ""
    if commit:
        known = lookups.build_of_commit(commit)
        if known is not None:
            if printed is not None and printed != known.build:
                note = (
                    f"printed build {printed} but commit {commit} is build {known.build} "
                    "in llama.cpp's git history; the git count is used"
                )
            build = known.build
    version = ""
    if build is not None:
        version = f"b{build}"
    elif commit:
        version = f"commit {commit}"
    if label:
        version = f"{version} ({label})".strip()
    run_date, basis = ("", "")
    if build is not None:
        run_date, basis = lookups.llamacpp_date(build)
    if not run_date and date:
        run_date, basis = date, "measurement date"
    return version, build, run_date, basis, note


def _version_date(table: tuple[VersionDate, ...], version: tuple[int, ...]) -> str:
    for entry in table:
        if entry.version == version or entry.version[: len(version)] == version:
            return entry.date
    return ""


def _mlx(rv: str, date: str, lookups: Lookups) -> tuple[str, str, str]:
    """(runtime_version, runtime_date, basis) for mlx-lm rows."""
    if m := re.search(r"(?i)mlx-lm\s*(>=\s*\d+\.\d+\.\d+)", rv):
        # A dependency pin says which versions were allowed, not which one ran.
        return f"mlx-lm {m.group(1).replace(' ', '')}", date, "measurement date" if date else ""
    lm = re.search(r"(?i)mlx[-_ ]?lm[^0-9;,/]*?(\d+\.\d+(?:\.\d+)?)", rv)
    core = re.search(r"(?i)\bmlx (\d+\.\d+\.\d+)", rv)
    bare = re.fullmatch(r"\s*(\d+\.\d+\.\d+)\s*", rv)
    if lm or bare:
        text = (lm or bare).group(1)  # type: ignore[union-attr]
        found = _version_date(lookups.mlx_lm_versions, parse_version(text))
        if found:
            return f"mlx-lm {text}", found, "mlx-lm release tag date"
        return f"mlx-lm {text}", date, "measurement date" if date else ""
    if core:
        text = core.group(1)
        found = _version_date(lookups.mlx_versions, parse_version(text))
        if found:
            return f"mlx {text}", found, "mlx release tag date (mlx-lm version not stated)"
        return f"mlx {text}", date, "measurement date" if date else ""
    return "", date, "measurement date" if date else ""


# Ollama model tags and quant labels served by its MLX runner.
_OLLAMA_MLX = re.compile(r"(?i)nvfp4|mxfp8|\bint4\b|-mlx\b|ollama mlx")


def _date_span(date: str) -> tuple[str, str]:
    """First and last day a 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' date can mean."""
    if len(date) == 4:
        return f"{date}-01-01", f"{date}-12-31"
    if len(date) == 7:
        return f"{date}-01", f"{date}-31"
    return date, date


def _ollama_engine_by_date(date: str, arch: str, lookups: Lookups) -> tuple[str, str]:
    """The engine every Ollama release out by the measurement date used for this architecture.

    A user runs a version released on or before the measurement date. Before the first
    release that put the architecture on Ollama's own engine, every version ran it with the
    llama.cpp runner; an architecture Ollama only ever ran on its own engine ran there until
    0.30 moved every GGUF model to llama-server. Anything else stays unknown.
    """
    last_day = _date_span(date)[1]
    server = [r for r in lookups.ollama_rules if r.gguf_runner.startswith("llama-server")]
    if server and last_day >= server[0].date:
        return "", ""
    listed = [r for r in lookups.ollama_rules if arch in r.ollama_engine_archs]
    if not listed or last_day < listed[0].date:
        return "llama.cpp-runner", (
            f"measured {date}, before any Ollama release ran architecture {arch} on its "
            "own engine (fs/ggml OllamaEngineRequired per tag)"
        )
    since = lookups.ollama_engine_only.get(arch)
    if since is not None:
        return "ollama-engine", (
            f"measured {date}; Ollama ran architecture {arch} only on its own engine from "
            f"{'.'.join(map(str, since))} (ollama_engine_only.csv) until 0.30"
        )
    return "", ""


def _ollama(
    rv: str, engine_raw: str, date: str, arch: str, mlx_model: bool, lookups: Lookups
) -> tuple[str, str, str, str, str]:
    """(runtime_version, engine, engine_basis, runtime_date, basis)."""
    m = re.search(r"(\d+\.\d+(?:\.\d+)?(?:-rc\d+)?)", rv)
    version = m.group(1) if m else ""
    vt = parse_version(version) if version else ()
    run_date, basis = (date, "measurement date") if date else ("", "")
    rule = None
    if vt:
        applicable = [r for r in lookups.ollama_rules if r.version <= vt]
        rule = applicable[-1] if applicable else None
        exact = [r for r in lookups.ollama_rules if r.version[: len(vt)] == vt]
        if exact:
            run_date, basis = exact[0].date, "Ollama release tag date"
    low = engine_raw.lower()
    if "mlx" in low:
        return version, "mlx-runner", "stated", run_date, basis
    if "llama-server" in low:
        return version, "llama-server", "stated", run_date, basis
    if "ollama-engine" in low:
        return version, "ollama-engine", "stated", run_date, basis
    if low.startswith("llama.cpp"):
        return version, "llama.cpp-runner", "stated", run_date, basis
    if mlx_model:
        return version, "mlx-runner", "MLX model tag (Ollama's MLX runner)", run_date, basis
    if rule is not None:
        where = f"Ollama {rule.text} rules (fs/ggml OllamaEngineRequired, llm/server.go)"
        if rule.gguf_runner.startswith("llama-server"):
            return version, "llama-server", where, run_date, basis
        if not rule.ollama_engine_archs and rule.gguf_runner.startswith("llama.cpp-runner ("):
            return version, "llama.cpp-runner", where, run_date, basis
        if arch:
            if arch in rule.ollama_engine_archs:
                return version, "ollama-engine", where + f"; architecture {arch}", run_date, basis
            return version, "llama.cpp-runner", where + f"; architecture {arch}", run_date, basis
    if not version and date and arch:
        engine, why = _ollama_engine_by_date(date, arch, lookups)
        if engine:
            return version, engine, why, run_date, basis
    return version, "", "not stated", run_date, basis


# A repository-wide statement of the versions used, quoted in the row's notes.
_README_LLAMACPP = re.compile(r"README says results collected with llama\.cpp build (\d{3,5})")
_README_MLX_LM = re.compile(r"README says results collected with .*?mlx-lm (\d+\.\d+\.\d+)")


def _stated_elsewhere(runtime: str, rv: str, notes: str) -> tuple[str, str]:
    """(version text, note) when the row has no version but its source's README states it."""
    if rv:
        return rv, ""
    if runtime == "llama.cpp" and (m := _README_LLAMACPP.search(notes)):
        return f"b{m.group(1)}", "build from the source repository's README"
    if runtime == "mlx" and (m := _README_MLX_LM.search(notes)):
        return f"mlx-lm {m.group(1)}", "mlx-lm version from the source repository's README"
    return rv, ""


_LLAMACPP_PR = re.compile(r"github\.com/ggml-org/llama\.cpp/pull/(\d+)")


def _pr_stage(url: str, notes: str) -> str:
    """For a llama.cpp PR's before/after table without builds: which side the row is."""
    pr = _LLAMACPP_PR.search(url)
    if not pr:
        return ""
    number = pr.group(1)
    if re.search(rf"(?i)PR #{number} branch|PR branch|PR head|\(PR #{number}\b", notes):
        return f"(+PR #{number})"
    if re.search(r"(?i)\bmaster\b|baseline|before PR", notes):
        return f"(master before PR #{number})"
    return ""


# llama.cpp backend labels as printed -> one spelling.
_BACKENDS = {"metal": "Metal", "mtl,blas": "Metal,BLAS", "metal,blas": "Metal,BLAS", "cpu": "CPU"}


def normalise_runtime(
    raw: dict[str, str],
    date: str,
    arch: str,
    mlx_model: bool,
    lookups: Lookups,
) -> Runtime:
    runtime = raw["runtime"].strip()
    rv = raw["runtime_version"].strip()
    engine_raw = raw["engine"].strip()
    note = ""
    if runtime == "mlx":
        runtime = _mlx_runtime(rv, raw["test"], raw["notes"])
    rv, note = _stated_elsewhere(runtime, rv, raw["notes"])
    if runtime == "llama.cpp":
        version, build, run_date, basis, build_note = _llamacpp(rv, date, lookups)
        if not version:
            version = _pr_stage(raw.get("source_url", ""), raw["notes"])
        note = "; ".join(x for x in (note, build_note) if x)
        backend = _BACKENDS.get(engine_raw.lower(), engine_raw)
        return Runtime(
            runtime, version, build, backend, "stated" if backend else "", run_date, basis, note
        )
    if runtime == "mlx":
        version, run_date, basis = _mlx(rv, date, lookups)
        return Runtime(runtime, version, None, "", "", run_date, basis, note)
    if runtime == "ollama":
        version, engine, engine_basis, run_date, basis = _ollama(
            rv, engine_raw, date, arch, mlx_model, lookups
        )
        return Runtime(runtime, version, None, engine, engine_basis, run_date, basis, note)
    if runtime in ("lmstudio-gguf", "lmstudio-mlx"):
        engine = ""
        if m := re.search(r"(?i)(?:metal )?llama\.cpp[- ]?(?:metal)? ?(\d+\.\d+\.\d+)", rv):
            engine = f"llama.cpp-metal {m.group(1)}"
        elif m := re.search(r"(?i)(?:lm studio )?mlx(?: runtime| engine)? v?(\d+\.\d+\.\d+)", rv):
            engine = f"mlx-engine {m.group(1)}"
        lms = re.search(r"(?i)lm studio (\d+\.\d+\.\d+)", rv)
        version = f"LM Studio {lms.group(1)}" if lms else ""
        return Runtime(
            runtime,
            version,
            None,
            engine,
            "stated" if engine else "",
            date,
            "measurement date" if date else "",
            note,
        )
    return Runtime(
        runtime,
        rv,
        None,
        engine_raw,
        "stated" if engine_raw else "",
        date,
        "measurement date" if date else "",
        note,
    )
