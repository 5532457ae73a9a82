"""Importing measured serving metrics from Prometheus' HTTP API, and attaching them to a plan.

Prometheus' answers are recorded responses of a real Prometheus (tests/bench/data/prometheus,
see its README) served by a local HTTP server in the documented /api/v1/query format; the
import, the store, the plan attachment and the gate run for real."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from forgeplanner.bench.prometheus_import import (
    QUERIES,
    PrometheusError,
    PrometheusQuery,
    measured_from,
    parse_vector,
    query_all,
    record_prometheus,
)
from forgeplanner.cli.main import main
from forgeplanner.store import BenchRunRepo, Store

DATA = Path(__file__).parent / "data" / "prometheus"
RECORDED = {
    "forgeplanner:decode_tokens_per_second": "decode_tokens_per_second.json",
    "forgeplanner:prefill_tokens_per_second": "prefill_tokens_per_second.json",
    "forgeplanner:ttft_seconds_512": "ttft_seconds_512.json",
    "forgeplanner:requests_waiting": "requests_waiting.json",
}


class _Prometheus(BaseHTTPRequestHandler):
    """Answers /api/v1/query from the recordings: by recording rule name and node label."""

    seen: ClassVar[list[str]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
        type(self).seen.append(query)
        name, _, rest = query.partition("{")
        status, body = 200, (DATA / "empty.json").read_bytes()
        if url.path != "/api/v1/query":
            status, body = 404, b"404 page not found"
        elif not rest.endswith("}"):
            status, body = 400, (DATA / "error_bad_data.json").read_bytes()
        elif name in RECORDED and 'node="studio"' in rest:
            body = (DATA / RECORDED[name]).read_bytes()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def prometheus_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_parse_the_documented_shapes():
    ((labels, value),) = parse_vector((DATA / "decode_tokens_per_second.json").read_text(), "q")
    assert labels["node"] == "studio" and value == pytest.approx(11.437, abs=1e-3)
    assert parse_vector((DATA / "empty.json").read_text(), "q") == []
    with pytest.raises(PrometheusError, match="Prometheus answered bad_data: invalid parameter"):
        parse_vector((DATA / "error_bad_data.json").read_text(), "q")
    with pytest.raises(PrometheusError, match="expected resultType 'vector', got 'matrix'"):
        parse_vector('{"status":"success","data":{"resultType":"matrix","result":[]}}', "q")
    with pytest.raises(PrometheusError, match="not JSON"):
        parse_vector("<html>", "q")


def test_query_all_against_a_local_server(prometheus_url):
    answers = query_all(PrometheusQuery(prometheus_url, "studio"))
    measured, notes = measured_from(answers, "studio")
    assert measured["decode_tps"] == pytest.approx(11.437, abs=1e-3)
    assert measured["prefill_tps"] == pytest.approx(110.0, abs=0.01)
    assert measured["ttft_s"] == pytest.approx(4.6547, abs=1e-3)
    assert measured["queue"] == 3
    assert notes == []
    assert set(_Prometheus.seen[-4:]) == {f'{e}{{node="studio"}}' for e in QUERIES.values()}
    # an unknown node: nothing measured, said so
    measured, notes = measured_from(query_all(PrometheusQuery(prometheus_url, "mini-9")), "mini-9")
    assert measured["decode_tps"] is None and len(notes) == 4


def test_record_and_attach_to_a_plan_like_a_benchmark_run(prometheus_url, tmp_path, capsys):
    store = Store()
    try:
        gen = record_prometheus(
            store,
            PrometheusQuery(prometheus_url, "studio"),
            model_id="llama-3.1-70b",
            quant="Q4_K_M",
            config_id="mac-studio-m2-ultra-76c-192gb",
        )
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                rec = stop.value
                break
        assert rec.status == "ok" and rec.runner == "prometheus"
        with store.session() as s:
            full = BenchRunRepo(s).get(rec.id, raw=True)
        raw = json.loads(full.raw_output)
        assert json.loads(raw["decode_tps"]) == json.loads(
            (DATA / "decode_tokens_per_second.json").read_text()
        )
        assert full.estimate["decode_tps"] > 0 and full.error_pct["decode_tps"] is not None
    finally:
        store.close()
    plan = tmp_path / "lab.fplan"
    assert main(["plan", "new", "shelf", "--out", str(plan), "--no-db"]) == 0
    assert main(["plan", "attach-run", str(plan), str(rec.id), "--no-db", "--json"]) == 0
    capsys.readouterr()
    assert main(["plan", "show", str(plan), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "prometheus" in json.dumps(shown)
    policy = tmp_path / "policy.toml"
    policy.write_text("[agreement]\nmin_pct = 50\nmetrics = ['decode_tps']\n")
    code = main(["gate", str(plan), "--policy", str(policy), "--json"])
    verdicts = json.loads(capsys.readouterr().out)["verdicts"]
    assert [v["subject"] for v in verdicts] == [f"run {rec.id} decode_tps"]
    assert code in (0, 1)


def test_cli_import_and_unreachable_server(prometheus_url, capsys):
    assert (
        main(
            ["bench", "import", "prometheus", "--url", prometheus_url, "--node", "studio", "--json"]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["runner"] == "prometheus" and d["measured"]["decode_tps"] == pytest.approx(
        11.437, abs=1e-3
    )
    assert (
        main(["bench", "import", "prometheus", "--url", "http://127.0.0.1:9", "--node", "studio"])
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot reach Prometheus at http://127.0.0.1:9" in err
    assert main(["bench", "import", "prometheus", "--url", prometheus_url, "--node", "mini-9"]) == 2
    assert "has no decode or prefill rate for node mini-9" in capsys.readouterr().err
