"""Ollama runner over its HTTP API, through the official `ollama` client.

- `/api/generate` (streamed): the final chunk carries the timings in nanoseconds
  (docs/api.md "Generate a completion": total_duration, load_duration, prompt_eval_count,
  prompt_eval_duration, eval_count, eval_duration). Prefill tokens/s = prompt_eval_count /
  prompt_eval_duration * 1e9; decode tokens/s = eval_count / eval_duration * 1e9.
- `/api/ps`: the loaded model's `size` and `size_vram` (bytes) -> memory used.

Protocol: one warm-up request (loads the model; its load_duration is reported separately),
then `repetitions` requests. Every request starts with a different number so Ollama's prompt
cache cannot reuse the previous prompt (otherwise prefill would be measured on a few tokens);
`raw` skips the chat template so the prompt is what we send; temperature 0 and a fixed seed.
Ollama has no ignore-EOS option: generation is asked for `num_predict` tokens of a counting
task that does not end by itself, and a repetition that still stops early is flagged (its
tokens/s stays valid: it is computed from the reported eval_count).
URL default http://localhost:11434.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeplanner.bench.progress import BenchGen, CancelLike, Progress, check
from forgeplanner.bench.result import BenchResult
from forgeplanner.errors import DataError, ForgePlannerError

DEFAULT_URL = "http://localhost:11434"
START_HINT = (
    "start Ollama (macOS: open the Ollama app or run `ollama serve`; install with "
    "`brew install ollama` or from https://ollama.com/download), or pass --url"
)
_FILLER = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "


class OllamaError(ForgePlannerError):
    pass


def default_url() -> str:
    """The server to ask when no --url is given: OLLAMA_HOST as Ollama's own CLI and client
    libraries read it (`host`, `host:port` or a URL; envconfig.Host in Ollama's source:
    scheme http and port 11434 by default), else http://localhost:11434."""
    import os

    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return DEFAULT_URL
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    rest = rest.rstrip("/")
    hostport = rest.split("/", 1)[0]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        rest = rest.replace(hostport, f"{hostport}:11434", 1)
    return f"{scheme}://{rest}"


@dataclass(frozen=True, slots=True)
class OllamaSpec:
    model: str
    url: str = DEFAULT_URL
    prompt_words: int = 256  # approximate; the measured prompt_eval_count is what counts
    n_gen: int = 128
    repetitions: int = 3
    num_ctx: int = 4096
    keep_alive: str = "5m"


def prompt_text(spec: OllamaSpec, rep: int) -> str:
    """A counting prompt that starts with a per-repetition marker (defeats the prompt cache)
    and asks for a continuation that has no natural end."""
    words = max(8, spec.prompt_words)
    body = (_FILLER * (words // 10 + 1)).split(" ")[:words]
    return f"Run {rep}. Continue counting forever without stopping: " + " ".join(body)


def generate_request(spec: OllamaSpec, rep: int) -> dict[str, Any]:
    """Keyword arguments for `ollama.Client.generate` (and the JSON body of /api/generate)."""
    return {
        "model": spec.model,
        "prompt": prompt_text(spec, rep),
        "raw": True,
        "stream": True,
        "keep_alive": spec.keep_alive,
        "options": {
            "num_predict": spec.n_gen,
            "num_ctx": spec.num_ctx,
            "temperature": 0,
            "seed": 0,
        },
    }


def _ns(final: Mapping[str, Any], key: str, source: str) -> int:
    v = final.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise DataError(source, key, v, "expected a non-negative integer (nanoseconds/count)")
    return v


@dataclass(frozen=True, slots=True)
class GenerateTiming:
    prompt_tokens: int
    prompt_tps: float | None
    gen_tokens: int
    gen_tps: float | None
    load_s: float
    total_s: float
    done_reason: str | None


def parse_generate_final(final: Mapping[str, Any], source: str = "/api/generate") -> GenerateTiming:
    """The final (done) object of /api/generate -> timings (pure)."""
    if not final.get("done"):
        raise DataError(source, "done", final.get("done"), "the final response must have done=true")
    pc = _ns(final, "prompt_eval_count", source) if "prompt_eval_count" in final else 0
    pd = _ns(final, "prompt_eval_duration", source) if "prompt_eval_duration" in final else 0
    ec = _ns(final, "eval_count", source)
    ed = _ns(final, "eval_duration", source)
    return GenerateTiming(
        prompt_tokens=pc,
        prompt_tps=pc / pd * 1e9 if pc and pd else None,
        gen_tokens=ec,
        gen_tps=ec / ed * 1e9 if ec and ed else None,
        load_s=final.get("load_duration", 0) / 1e9,
        total_s=final.get("total_duration", 0) / 1e9,
        done_reason=final.get("done_reason"),
    )


def parse_ps(data: Mapping[str, Any], model: str, source: str = "/api/ps") -> dict[str, Any] | None:
    """The entry of `model` in /api/ps -> {"size_bytes", "size_vram_bytes", ...} (pure)."""
    models = data.get("models")
    if not isinstance(models, list):
        raise DataError(source, "models", models, "expected a list")
    for m in models:
        if not isinstance(m, Mapping):
            continue
        if (
            model in (m.get("name"), m.get("model"))
            or str(m.get("name", "")).split(":")[0] == model
        ):
            size, vram = m.get("size"), m.get("size_vram")
            return {
                "name": m.get("name"),
                "size_bytes": size if isinstance(size, int) else None,
                "size_vram_bytes": vram if isinstance(vram, int) else None,
                "context_length": m.get("context_length"),
                "details": dict(m.get("details") or {}),
            }
    return None


def results_from_timings(
    timings: list[GenerateTiming], spec: OllamaSpec, memory: dict[str, Any] | None
) -> list[BenchResult]:
    """Repetitions -> one "pp" and one "tg" BenchResult (median and spread)."""
    out = []
    pp = [t.prompt_tps for t in timings if t.prompt_tps]
    tg = [t.gen_tps for t in timings if t.gen_tps]
    extra = {"memory": memory} if memory else {}
    short = [t.gen_tokens for t in timings if t.gen_tokens < spec.n_gen]
    if short:
        extra["stopped_early"] = (
            f"{len(short)} of {len(timings)} repetitions stopped before {spec.n_gen} tokens "
            f"({', '.join(map(str, short))}); tokens/s is from the reported counts"
        )
    size = memory.get("size_bytes") if memory else None
    if pp:
        out.append(
            BenchResult(
                test="pp",
                n_prompt=round(statistics.median(t.prompt_tokens for t in timings)),
                n_gen=0,
                n_depth=0,
                avg_ts=statistics.mean(pp),
                stddev_ts=statistics.stdev(pp) if len(pp) > 1 else 0.0,
                samples_ts=tuple(pp),
                model_size=size,
                runner="ollama",
                extra=extra,
            )
        )
    if tg:
        out.append(
            BenchResult(
                test="tg",
                n_prompt=0,
                n_gen=round(statistics.median(t.gen_tokens for t in timings)),
                n_depth=0,
                avg_ts=statistics.mean(tg),
                stddev_ts=statistics.stdev(tg) if len(tg) > 1 else 0.0,
                samples_ts=tuple(tg),
                model_size=size,
                runner="ollama",
                extra=extra,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class OllamaRun:
    results: tuple[BenchResult, ...]
    raw: list[dict[str, Any]]
    memory: dict[str, Any] | None
    version: str | None


# One request (the warm-up loads the model; a repetition generates n_gen tokens) must finish
# within REQUEST_DEADLINE_S in total, whatever the server does: a server that trickles bytes
# defeats a per-read timeout (forgeplanner.http_deadline).
REQUEST_DEADLINE_S = 900.0
READ_TIMEOUT_S = 120.0
MAX_REPLY_BYTES = 64 << 20


def _client(url: str):
    from ollama import Client

    from forgeplanner.http_deadline import DeadlineTransport

    return Client(
        host=url,
        timeout=min(READ_TIMEOUT_S, REQUEST_DEADLINE_S),
        transport=DeadlineTransport(REQUEST_DEADLINE_S, MAX_REPLY_BYTES),
    )


def _version(url: str) -> str | None:
    """Ollama's version (GET /api/version; the client has no call for it); None if absent."""
    import httpx

    from forgeplanner.http_deadline import DeadlineTransport

    try:
        with httpx.Client(transport=DeadlineTransport(10.0, 1 << 16), timeout=10.0) as c:
            version = c.get(url.rstrip("/") + "/api/version").json()["version"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) else None


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _dump(obj: Any) -> dict[str, Any]:
    return obj.model_dump(mode="json") if hasattr(obj, "model_dump") else dict(obj)


def run_ollama(spec: OllamaSpec, cancel: CancelLike | None = None) -> BenchGen[OllamaRun]:
    import httpx
    from ollama import ResponseError

    client = _client(spec.url)
    total = spec.repetitions + 1
    timings: list[GenerateTiming] = []
    raw: list[dict[str, Any]] = []
    try:
        version = _version(spec.url)
        for rep in range(total):
            check(cancel)
            what = (
                "warm-up (loads the model)" if rep == 0 else f"repetition {rep}/{spec.repetitions}"
            )
            yield Progress("ollama", rep / total, what)
            final: dict[str, Any] | None = None
            n = 0
            stream = client.generate(**generate_request(spec, rep))
            try:
                for chunk in stream:
                    if cancel is not None and cancel.is_set():
                        break
                    n += 1
                    d = _dump(chunk)
                    if d.get("done"):
                        final = d
                    elif n % 16 == 0:
                        frac = (rep + min(n / max(1, spec.n_gen), 1.0)) / total
                        yield Progress("ollama", frac, f"{what}: {n} tokens")
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            check(cancel)
            if final is None:
                raise OllamaError(f"Ollama at {spec.url} ended the stream without a final result")
            raw.append({k: v for k, v in final.items() if k not in ("context", "response")})
            if rep > 0:
                timings.append(parse_generate_final(final))
        memory = parse_ps(_dump(client.ps()), spec.model)
    except ConnectionError:
        raise OllamaError(f"cannot reach Ollama at {spec.url}; {START_HINT}") from None
    except ResponseError as exc:
        if exc.status_code == 404:
            raise OllamaError(
                f"Ollama at {spec.url} has no model '{spec.model}': `ollama pull {spec.model}`"
            ) from None
        raise OllamaError(f"Ollama at {spec.url}: {exc.error} (HTTP {exc.status_code})") from None
    except httpx.HTTPError as exc:
        raise OllamaError(f"Ollama at {spec.url}: {_line(exc)}; {START_HINT}") from None
    except DataError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        # Not Ollama's JSON: a non-JSON line in the stream (JSONDecodeError), a reply that
        # fails the client's pydantic models (ValidationError, many lines), a list where an
        # object belongs. One line naming the server.
        raise OllamaError(
            f"Ollama at {spec.url}: the reply is not Ollama's API JSON ({_line(exc)[:160]})"
        ) from None
    yield Progress("ollama", 1.0, "done")
    return OllamaRun(tuple(results_from_timings(timings, spec, memory)), raw, memory, version)
