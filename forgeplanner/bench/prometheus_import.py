"""Measured serving metrics from Prometheus, stored as a benchmark run (runner "prometheus") so a
plan attaches them like any other run (`plan attach-run PLAN ID`) and the gate compares them
with the estimate.

Prometheus' HTTP API (prometheus.io/docs/prometheus/latest/querying/api/): `GET
/api/v1/query?query=EXPR[&time=T]` answers

    {"status": "success", "data": {"resultType": "vector",
      "result": [{"metric": {"node": "studio", ...}, "value": [1733560000.123, "11.2"]}]}}

or `{"status": "error", "errorType": "bad_data", "error": "..."}`. Sample values are strings
(they may be "NaN" or "+Inf"). The queries are the recording rules ForgePlanner's rules file
defines (forgeplanner.platform.observability), selected by the `node` label the scrape
config gives each inference Mac. The raw responses are kept verbatim as the run's raw output,
with their SHA-256, like a tool's output.

Network: the client talks to the URL the user gives, http://localhost:9090 by default (e.g.
through `kubectl port-forward svc/prometheus 9090 -n monitoring`).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forgeplanner.bench.progress import BenchGen, CancelLike, Progress, check
from forgeplanner.errors import ForgePlannerError
from forgeplanner.platform.observability import DECODE_TPS, PREFILL_TPS, QUEUE, TTFT_S
from forgeplanner.store import RunRecord, Store

DEFAULT_URL = "http://localhost:9090"
# measured key -> recording rule (observability) it is read from
QUERIES: dict[str, str] = {
    "decode_tps": DECODE_TPS,
    "prefill_tps": PREFILL_TPS,
    "ttft_s": TTFT_S,
    "queue": QUEUE,
}


class PrometheusError(ForgePlannerError):
    """Prometheus could not be asked, or answered with an error or an unexpected shape."""


@dataclass(frozen=True, slots=True)
class PrometheusQuery:
    url: str
    node: str
    time: float | None = None  # evaluation timestamp (unix seconds); None = now
    timeout_s: float = 10.0

    def query_url(self, expr: str) -> str:
        params = {"query": f'{expr}{{node="{self.node}"}}'}
        if self.time is not None:
            params["time"] = repr(self.time)
        return f"{self.url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(params)}"


def fetch(url: str, timeout_s: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        # Prometheus answers 400/422/503 with its JSON error body: keep it for the message
        body = exc.read().decode("utf-8", "replace")
        return body or json.dumps({"status": "error", "error": f"HTTP {exc.code}"})
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrometheusError(
            f"cannot reach Prometheus at {url.split('/api/')[0]}: {reason}"
        ) from None


def parse_vector(body: str, expr: str) -> list[tuple[dict[str, str], float]]:
    """One /api/v1/query answer -> [(labels, value)]. Raises PrometheusError naming the query."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PrometheusError(f"query {expr}: answer is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        err = doc.get("error", "unknown error") if isinstance(doc, dict) else "not an object"
        kind = doc.get("errorType", "error") if isinstance(doc, dict) else "error"
        raise PrometheusError(f"query {expr}: Prometheus answered {kind}: {err}")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        got = data.get("resultType") if isinstance(data, dict) else data
        raise PrometheusError(f"query {expr}: expected resultType 'vector', got {got!r}")
    out = []
    for i, item in enumerate(data.get("result") or []):
        try:
            labels = dict(item["metric"])
            _ts, text = item["value"]
            value = float(text)
        except (KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"query {expr}: result[{i}] malformed ({exc!r})") from None
        out.append((labels, value))
    return out


def measured_from(answers: dict[str, str], node: str) -> tuple[dict[str, Any], list[str]]:
    """Measured metrics for `node` from the raw answers, and notes on what was missing."""
    measured: dict[str, Any] = {"node": node}
    notes = []
    for key, expr in QUERIES.items():
        series = [v for labels, v in parse_vector(answers[key], expr)
                  if labels.get("node") == node]  # fmt: skip
        finite = [v for v in series if math.isfinite(v)]
        if len(series) > 1:
            notes.append(f"{expr}: {len(series)} series for node {node}; their mean is used")
        if not finite:
            notes.append(f"{expr}: no finite sample for node {node} (idle server or not scraped)")
            measured[key] = None
        else:
            measured[key] = sum(finite) / len(finite)
    return measured, notes


def query_all(q: PrometheusQuery, get: Callable[[str, float], str] = fetch) -> dict[str, str]:
    return {key: get(q.query_url(expr), q.timeout_s) for key, expr in QUERIES.items()}


def record_prometheus(
    store: Store,
    q: PrometheusQuery,
    cancel: CancelLike | None = None,
    *,
    model_id: str | None = None,
    quant: str | None = None,
    config_id: str | None = None,
    runtime: str = "llama.cpp",
) -> BenchGen[RunRecord]:
    """Query, store the run (estimate for the serving Mac's catalog configuration first)."""
    from forgeplanner.bench.estimate_link import errors, estimate_for_run
    from forgeplanner.bench.fingerprint import tool_versions
    from forgeplanner.bench.session import _record, _start
    from forgeplanner.platform.observability import TTFT_PROMPT_TOKENS

    estimate = None
    if model_id and quant and config_id:
        from forgeplanner.host import host_from_config
        from models_db import load_models

        spec = load_models().get(model_id)
        estimate = estimate_for_run(
            spec, quant, host_from_config(config_id), prompt_tokens=TTFT_PROMPT_TOKENS,
            runtime=runtime,
        )  # fmt: skip
    # The serving Mac, not this machine: the fingerprint names it and where it was observed.
    fingerprint = {
        "hostname": q.node,
        "config_id": config_id,
        "observed_via": q.url,
        "source": "prometheus",
    }
    params = {
        "url": q.url,
        "node": q.node,
        "time": q.time,
        "queries": {k: q.query_url(e) for k, e in QUERIES.items()},
        "model_id": model_id,
        "quant": quant,
        "runtime": runtime,
        "prompt_tokens": TTFT_PROMPT_TOKENS,
    }
    run_id = _start(
        store,
        runner="prometheus",
        fingerprint=fingerprint,
        versions=tool_versions(),
        params=params,
        model_ref=model_id,
        estimate=estimate,
    )

    def work():
        check(cancel, "prometheus import")
        yield Progress("prometheus", 0.0, f"querying {q.url} for {q.node}")
        answers = query_all(q)
        measured, notes = measured_from(answers, q.node)
        if measured.get("decode_tps") is None and measured.get("prefill_tps") is None:
            raise PrometheusError(
                f"Prometheus at {q.url} has no decode or prefill rate for node {q.node}: "
                + "; ".join(notes)
            )
        yield Progress("prometheus", 1.0, "answers parsed")
        raw = json.dumps(answers, indent=1, sort_keys=True)
        return measured, errors(estimate, measured) if estimate else None, raw, "; ".join(notes)

    return (yield from _record(store, run_id, work))
