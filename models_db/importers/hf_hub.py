"""Import a model by its Hugging Face id: `hf:ORG/REPO[@REVISION]`.

Uses the official `huggingface_hub` client, so the endpoint (`HF_ENDPOINT`), the token of a
logged-in user (`hf auth login`, `HF_TOKEN`) and the hub's error codes behave as everywhere
else. Reads only small files: the repo's metadata (`/api/models/...`: commit, files, licence
from the model card, creation date), its `config.json`, and for GGUF-only repos the header of
one GGUF file by HTTP range requests (remote_gguf), never the weights. Nothing touches the
network unless a caller asks for an `hf:` id.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import DataError, ForgePlannerError
from models_db.importers._common import slugify
from models_db.importers.gguf_file import import_gguf
from models_db.importers.hf_config import MAX_CONFIG_BYTES, import_hf_config
from models_db.importers.remote_gguf import fetch_header, parse_content_range, write_sparse

DEFAULT_ENDPOINT = "https://huggingface.co"
TIMEOUT_S = 30.0
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Preferred GGUF when a repo holds several quantizations (the planner's default quant first).
_QUANT_PREFERENCE = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q8_0", "Q6_K", "Q4_0", "BF16", "F16")
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class HubRef:
    repo_id: str
    revision: str | None

    @property
    def text(self) -> str:
        return f"hf:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


def parse_hf_ref(text: str) -> HubRef:
    """`hf:ORG/REPO[@REV]` (the `hf:` prefix optional) -> HubRef; DataError when malformed."""
    raw = text.strip()
    body = raw[3:] if raw.lower().startswith("hf:") else raw
    repo, _, rev = body.partition("@")
    if not _REPO.match(repo) or (rev == "" and "@" in body):
        raise DataError(raw, "(model id)", raw, "expected hf:ORG/REPO or hf:ORG/REPO@REVISION")
    return HubRef(repo, rev or None)


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _hub_error(ref: HubRef, exc: Exception) -> ForgePlannerError:
    """One clear line for each way the hub can refuse (huggingface_hub.errors)."""
    from huggingface_hub import errors

    where = ref.text
    if isinstance(exc, errors.GatedRepoError):
        return DataError(
            where,
            "(access)",
            ref.repo_id,
            "gated repository: accept its conditions on the model page, then log in "
            "(`hf auth login`) or set HF_TOKEN",
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return DataError(where, "(revision)", ref.revision, "no such revision in this repository")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return DataError(
            where,
            "(repository)",
            ref.repo_id,
            "not found, or private and not visible with your token (log in with "
            "`hf auth login` or set HF_TOKEN)",
        )
    if isinstance(exc, errors.EntryNotFoundError):
        return DataError(where, "(file)", str(exc).splitlines()[0], "file not in the repository")
    if isinstance(exc, errors.HfHubHTTPError):
        return DataError(where, "(hub)", str(exc).splitlines()[0], "the hub refused the request")
    return ForgePlannerError(f"{where}: cannot reach {_endpoint()} ({exc})")


def _session_get(url: str, headers: dict[str, str]) -> Any:
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status

    response = get_session().get(url, headers=headers, follow_redirects=True, timeout=TIMEOUT_S)
    hf_raise_for_status(response)
    return response


def _file_url(ref: HubRef, sha: str, filename: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(ref.repo_id, filename, revision=sha, endpoint=_endpoint())


def _headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(library_name="forgeplanner")


def _pick_gguf(names: list[str], wanted: str | None, ref: HubRef) -> str:
    ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
    if wanted:
        if wanted not in ggufs:
            raise DataError(ref.text, "--file", wanted, f"not a GGUF of this repo: {ggufs[:8]}")
        return wanted
    # only first shards of split files, and no projector files (vision towers)
    ggufs = [n for n in ggufs if "mmproj" not in n.lower()]
    ggufs = [n for n in ggufs if not _SHARD.search(n) or _SHARD.search(n).group(1) == "00001"]  # type: ignore[union-attr]
    for quant in _QUANT_PREFERENCE:
        for name in ggufs:
            if quant.lower() in name.lower():
                return name
    return ggufs[0]


def import_hf_repo(
    text: str,
    *,
    gguf_file: str | None = None,
    model_id: str | None = None,
    progress: Progress | None = None,
) -> ModelSpec:
    """Import `hf:ORG/REPO[@REV]`: its config.json, else the header of one of its GGUF files."""
    from huggingface_hub import HfApi, errors

    ref = parse_hf_ref(text)
    say = progress or (lambda _m: None)
    say(f"{ref.text}: asking {_endpoint()} for the repository metadata")
    try:
        info = HfApi(endpoint=_endpoint()).model_info(
            ref.repo_id, revision=ref.revision, timeout=TIMEOUT_S
        )
        names = [s.rfilename for s in (info.siblings or [])]
        sha = info.sha or ref.revision or "main"
        # A renamed repo answers under its new id (the hub redirects the old one, e.g.
        # meta-llama/Meta-Llama-3.1-8B-Instruct -> meta-llama/Llama-3.1-8B-Instruct): read the
        # files and record the source under the id the hub now uses.
        if isinstance(getattr(info, "id", None), str) and _REPO.match(info.id):
            if info.id != ref.repo_id:
                say(f"{ref.text}: the hub now names it {info.id}")
            ref = HubRef(info.id, ref.revision)
        with tempfile.TemporaryDirectory(prefix="forgeplanner-hf-") as tmp:
            if "config.json" in names and not gguf_file:
                say(f"{ref.text}: reading config.json at {sha[:12]}")
                response = _session_get(_file_url(ref, sha, "config.json"), _headers())
                if len(response.content) > MAX_CONFIG_BYTES:
                    raise DataError(ref.text, "config.json", len(response.content), "too large")
                path = Path(tmp) / "config.json"
                path.write_bytes(response.content)
                spec = import_hf_config(path, model_id=model_id)
                what = "config.json"
            elif any(n.lower().endswith(".gguf") for n in names):
                chosen = _pick_gguf(names, gguf_file, ref)
                spec = _import_remote_gguf(ref, sha, chosen, names, Path(tmp), model_id, say)
                what = chosen
            else:
                raise DataError(ref.text, "(files)", names[:8], "no config.json and no .gguf file")
    except (errors.HfHubHTTPError, errors.HFValidationError) as exc:
        raise _hub_error(ref, exc) from None
    except OSError as exc:  # connection refused, DNS, TLS: the transport's errors are OSErrors
        raise _hub_error(ref, exc) from None
    except Exception as exc:  # httpx transport errors do not derive from OSError
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise _hub_error(ref, exc) from None
        raise
    return _with_hub_facts(spec, ref, sha, what, info, model_id)


def _import_remote_gguf(
    ref: HubRef,
    sha: str,
    chosen: str,
    names: list[str],
    tmp: Path,
    model_id: str | None,
    say: Progress,
) -> ModelSpec:
    shard = _SHARD.search(chosen)
    files = [chosen]
    if shard:
        count = int(shard.group(2))
        stem = chosen[: shard.start()]
        files = [f"{stem}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
        missing = [f for f in files if f not in names]
        if missing:
            raise DataError(ref.text, "(files)", missing[0], "shard of a split GGUF is missing")
    local = []
    for name in files:
        url = _file_url(ref, sha, name)

        def fetch(start: int, end: int, url: str = url, name: str = name) -> tuple[bytes, int]:
            response = _session_get(url, {**_headers(), "Range": f"bytes={start}-{end}"})
            if response.status_code == 200:  # server ignored the range: refuse, never download
                raise DataError(name, "Range", f"bytes={start}-{end}", "server sent the whole file")
            return response.content, parse_content_range(
                response.headers.get("Content-Range"), name
            )

        say(f"{ref.text}: reading the header of {name}")
        prefix, total = fetch_header(name, fetch, say)
        target = tmp / Path(name).name
        local.append(write_sparse(target, prefix, total))
    return import_gguf(local[0], model_id=model_id)


def _with_hub_facts(
    spec: ModelSpec, ref: HubRef, sha: str, what: str, info: Any, model_id: str | None
) -> ModelSpec:
    """Source, licence (model card) and date from the hub's metadata."""
    extra = dict(spec.extra)
    unknown = dict(extra.get("unknown", {}))  # type: ignore[call-overload]
    license_ = spec.license
    card = getattr(info, "card_data", None)
    card_license = card.get("license") if card is not None else None
    if isinstance(card_license, str) and card_license.strip():
        license_ = card_license.strip()
        if license_ == "other" and isinstance(card.get("license_name"), str):
            license_ = card.get("license_name")
        extra["license_source"] = f"model card front matter of {ref.repo_id}@{sha[:12]}"
        unknown.pop("license", None)
    release = spec.release_date
    created = getattr(info, "created_at", None)
    if created is not None:
        release = created.date().isoformat()
        extra["release_date_source"] = (
            f"Hugging Face repository creation date of {ref.repo_id} (upload date, which can "
            "trail the announcement)"
        )
        unknown.pop("release_date", None)
    extra["unknown"] = unknown
    extra["source_commit"] = f"{ref.repo_id}@{sha}"
    name = ref.repo_id.rsplit("/", 1)[-1]
    return replace(
        spec,
        id=model_id or slugify(name),
        name=name,
        hf_repo=ref.repo_id,
        license=license_,
        release_date=release,
        source=f"{_endpoint()}/{ref.repo_id} {what} at commit {sha}",
        origin="import:hf",
        extra=extra,
    )
