"""Observability that observes: Prometheus scrape configuration, alerting and recording rules and
a Grafana dashboard for the shelf a `PlatformLayout` describes. Pure: dicts in, dicts out.

What is scraped (learning track module 05; every port is the upstream default):

- `node`: node_exporter (port 9100) on every Linux K3s node (deployed as a DaemonSet by the
  GitOps repository).
- `macos-node`: node_exporter on every inference Mac (node_exporter has a darwin build; its
  meminfo collector reports `node_memory_wired_bytes`, which is where Metal's GPU allocations
  live, so the memory panel and alert compare it with the GPU wired limit).
- `kubelet` / `cadvisor`: each K3s node's kubelet (https, port 10250, `/metrics` and
  `/metrics/cadvisor`), and `k3s-apiserver` (https, port 6443), with the Prometheus service
  account's token. Static targets: the shelf's addresses are planned, and Debian's Prometheus
  build ships without Kubernetes service discovery, so static targets work everywhere.
- the inference servers: llama.cpp's `llama-server --metrics` serves Prometheus metrics at
  `/metrics` (tools/server: `llamacpp:prompt_tokens_total`, `llamacpp:prompt_seconds_total`,
  `llamacpp:tokens_predicted_total`, `llamacpp:tokens_predicted_seconds_total`,
  `llamacpp:requests_processing`, `llamacpp:requests_deferred`, ...). Ollama and mlx_lm.server
  publish no Prometheus metrics (neither's API documentation lists an endpoint), so they are
  probed through the blackbox exporter (`probe_success`, `probe_duration_seconds`); their
  tokens/s come from `forgeplanner bench run ollama|mlx`.

Rules: node down, an inference server down, wired memory near the GPU limit (90 %) and over it,
decode tokens/s below 80 % of the plan's estimate for 15 minutes. Recording rules compute the
measured rates once (`forgeplanner:decode_tokens_per_second` ...), and
`forgeplanner.bench.prometheus_import` reads the same series back into a plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeplanner.engine.platform_layout import PlatformLayout

NODE_EXPORTER_PORT = 9100  # node_exporter default (--web.listen-address=:9100)
KUBELET_PORT = 10250  # kubelet's authenticated HTTPS port
K3S_API_PORT = 6443  # K3s server's supervisor/API port (docs.k3s.io networking requirements)
BLACKBOX_ADDRESS = "blackbox-exporter.monitoring.svc:9115"  # blackbox_exporter default port
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RULES_FILE = "rules/forgeplanner.rules.yml"
SCRAPE_INTERVAL = "15s"
# Alert thresholds: what fraction of the GPU limit is "pressure", and how far below the plan's
# estimate measured decode may fall. Choices of this tool, written down here, not sourced.
GPU_PRESSURE_FRACTION = 0.9
DECODE_FLOOR_FRACTION = 0.8
TTFT_PROMPT_TOKENS = 512  # the prompt length the TTFT panel and import report (llama-bench -p)

# Recording rules (one name per measured metric, read back by the Prometheus import).
DECODE_TPS = "forgeplanner:decode_tokens_per_second"
PREFILL_TPS = "forgeplanner:prefill_tokens_per_second"
TTFT_S = "forgeplanner:ttft_seconds_512"
QUEUE = "forgeplanner:requests_waiting"


@dataclass(frozen=True, slots=True)
class MacExpectation:
    """What the plan expects of one inference Mac (None = unknown, no rule is written)."""

    node: str
    gpu_limit_bytes: int | None
    decode_tps: float | None = None
    prefill_tps: float | None = None


def _k3s_nodes(layout: PlatformLayout) -> list[str]:
    return [n.name for n in layout.nodes if n.k3s is not None]


def _macs(layout: PlatformLayout) -> list[str]:
    return [n.name for n in layout.nodes if "inference" in n.roles]


def _static(addresses: Mapping[str, str], nodes: list[str], port: int) -> list[dict[str, Any]]:
    return [
        {"targets": [f"{addresses[n]}:{port}"], "labels": {"node": n}}
        for n in nodes
        if n in addresses
    ]


def _serving(layout: PlatformLayout) -> list[tuple[str, int]]:
    """(node, port) of every placed inference server."""
    return [
        (layout.assignments[s.id], s.port)
        for s in layout.services
        if s.role == "inference" and s.id in layout.assignments
    ]


def prometheus_config(
    layout: PlatformLayout,
    addresses: Mapping[str, str],
    *,
    sa_dir: str = SA_DIR,
    rule_files: tuple[str, ...] = (RULES_FILE,),
) -> dict[str, Any]:
    """prometheus.yml as a dict. `sa_dir` holds the service account's `token` and `ca.crt`
    (inside the Prometheus pod: the Kubernetes default mount)."""
    k3s = _k3s_nodes(layout)
    macs = _macs(layout)
    auth = {
        "scheme": "https",
        "authorization": {"credentials_file": f"{sa_dir}/token"},
        # kubelets serve certificates signed by K3s' own CA, not the API server's
        "tls_config": {"ca_file": f"{sa_dir}/ca.crt", "insecure_skip_verify": True},
    }
    jobs: list[dict[str, Any]] = []
    if k3s:
        jobs.append(
            {"job_name": "node", "static_configs": _static(addresses, k3s, NODE_EXPORTER_PORT)}
        )
    if macs:
        jobs.append(
            {
                "job_name": "macos-node",
                "static_configs": _static(addresses, macs, NODE_EXPORTER_PORT),
            }
        )
    if k3s:
        jobs.append(
            {
                "job_name": "kubelet",
                **auth,
                "static_configs": _static(addresses, k3s, KUBELET_PORT),
            }
        )
        jobs.append(
            {
                "job_name": "cadvisor",
                "metrics_path": "/metrics/cadvisor",
                **auth,
                "static_configs": _static(addresses, k3s, KUBELET_PORT),
            }
        )
        if layout.server is not None:
            jobs.append(
                {
                    "job_name": "k3s-apiserver",
                    **auth,
                    "static_configs": _static(addresses, [layout.server.name], K3S_API_PORT),
                }
            )
    serving = _serving(layout)
    if serving and layout.runtime == "llama.cpp":
        jobs.append(
            {
                "job_name": "llamacpp",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"{addresses[n]}:{port}"], "labels": {"node": n}}
                    for n, port in serving
                ],
            }
        )
    elif serving:
        # Ollama and mlx_lm.server have no /metrics: probe their API through blackbox_exporter
        # (the documented multi-target pattern: target as a parameter, exporter as address).
        path = "/api/version" if layout.runtime == "ollama" else "/v1/models"
        jobs.append(
            {
                "job_name": "ollama" if layout.runtime == "ollama" else "mlx-server",
                "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "static_configs": [
                    {"targets": [f"http://{addresses[n]}:{port}{path}"], "labels": {"node": n}}
                    for n, port in serving
                ],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": BLACKBOX_ADDRESS},
                ],
            }
        )
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": list(rule_files),
        "scrape_configs": jobs,
    }


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def alert_rules(
    layout: PlatformLayout, expectations: Mapping[str, MacExpectation]
) -> dict[str, Any]:
    """The rules file (recording + alerting) as a dict, for `promtool check rules`."""
    recording = [
        {
            "record": DECODE_TPS,
            "expr": "rate(llamacpp:tokens_predicted_total[5m])"
            " / rate(llamacpp:tokens_predicted_seconds_total[5m])",
        },
        {
            "record": PREFILL_TPS,
            "expr": "rate(llamacpp:prompt_tokens_total[5m])"
            " / rate(llamacpp:prompt_seconds_total[5m])",
        },
        {
            # time to first token for a TTFT_PROMPT_TOKENS prompt at the measured prefill rate
            "record": TTFT_S,
            "expr": f"{TTFT_PROMPT_TOKENS} / {PREFILL_TPS}",
        },
        {
            "record": QUEUE,
            "expr": "llamacpp:requests_processing + llamacpp:requests_deferred",
        },
    ]
    alerts: list[dict[str, Any]] = [
        {
            "alert": "NodeDown",
            "expr": 'up{job=~"node|macos-node|kubelet"} == 0',
            "for": "2m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "{{ $labels.node }} ({{ $labels.job }}) has not answered for 2m",
            },
        },
        {
            "alert": "InferenceServerDown",
            "expr": 'up{job="llamacpp"} == 0 or probe_success{job=~"ollama|mlx-server"} == 0',
            "for": "2m",
            "labels": {"severity": "critical"},
            "annotations": {"summary": "the inference server on {{ $labels.node }} is down"},
        },
    ]
    for mac in _macs(layout):
        exp = expectations.get(mac)
        if exp is None:
            continue
        if exp.gpu_limit_bytes:
            warn = int(exp.gpu_limit_bytes * GPU_PRESSURE_FRACTION)
            sel = f'node_memory_wired_bytes{{job="macos-node",node="{mac}"}}'
            alerts.append(
                {
                    "alert": "GpuMemoryPressure",
                    "expr": f"{sel} > {warn}",
                    "for": "5m",
                    "labels": {"severity": "warning", "node": mac},
                    "annotations": {
                        "summary": f"{mac}: wired memory above {GPU_PRESSURE_FRACTION:.0%} of "
                        f"the GPU limit ({_gib(exp.gpu_limit_bytes)})",
                    },
                }
            )
            alerts.append(
                {
                    "alert": "GpuMemoryOverLimit",
                    "expr": f"{sel} > {exp.gpu_limit_bytes}",
                    "for": "1m",
                    "labels": {"severity": "critical", "node": mac},
                    "annotations": {
                        "summary": f"{mac}: wired memory above the GPU limit "
                        f"({_gib(exp.gpu_limit_bytes)}): macOS is short of memory",
                    },
                }
            )
        if exp.decode_tps and layout.runtime == "llama.cpp":
            floor = round(exp.decode_tps * DECODE_FLOOR_FRACTION, 2)
            alerts.append(
                {
                    "alert": "DecodeBelowEstimate",
                    "expr": f'{DECODE_TPS}{{node="{mac}"}} < {floor}',
                    "for": "15m",
                    "labels": {"severity": "warning", "node": mac},
                    "annotations": {
                        "summary": f"{mac}: decode below {DECODE_FLOOR_FRACTION:.0%} of the "
                        f"plan's estimate ({exp.decode_tps:.1f} tok/s)",
                    },
                }
            )
    return {
        "groups": [
            {"name": "forgeplanner-recording", "rules": recording},
            {"name": "forgeplanner-alerts", "rules": alerts},
        ]
    }


def dashboard_queries() -> dict[str, str]:
    """Every PromQL expression of the inference dashboard, by panel (checked by promtool)."""
    return {
        "decode": DECODE_TPS,
        "prefill": PREFILL_TPS,
        "ttft": TTFT_S,
        "queue_processing": "llamacpp:requests_processing",
        "queue_deferred": "llamacpp:requests_deferred",
        "memory": 'node_memory_wired_bytes{job="macos-node"}',
        "up": 'up{job=~"node|macos-node|llamacpp"}',
    }


def grafana_dashboard(
    layout: PlatformLayout, expectations: Mapping[str, MacExpectation]
) -> dict[str, Any]:
    """The inference dashboard as Grafana dashboard JSON, built with Grafana's own
    foundation SDK (its builders emit the dashboard schema)."""
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.builders import prometheus as gp
    from grafana_foundation_sdk.builders import stat, timeseries
    from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

    ds = DataSourceRef(type_val="prometheus", uid="prometheus")
    q = dashboard_queries()

    def target(expr: str, legend: str, ref: str = "A") -> gp.Dataquery:
        return gp.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(ds)

    def steps(value: float | None, color_below: str, color_above: str) -> gd.ThresholdsConfig:
        out = [Threshold(value=None, color=color_below)]
        if value is not None:
            out.append(Threshold(value=value, color=color_above))
        return gd.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(out)

    decode_est = [e.decode_tps for e in expectations.values() if e.decode_tps]
    limits = [e.gpu_limit_bytes for e in expectations.values() if e.gpu_limit_bytes]
    board = (
        gd.Dashboard("ForgePlanner: inference on the shelf")
        .uid("forgeplanner-inference")
        .tags(["forgeplanner", "inference"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_panel(
            timeseries.Panel()
            .title("Decode tokens/s (measured; line: plan estimate x 0.8)")
            .unit("short")
            .datasource(ds)
            .thresholds(
                steps(
                    min(decode_est) * DECODE_FLOOR_FRACTION if decode_est else None,
                    "red",
                    "green",
                )
            )
            .with_target(target(q["decode"], "{{node}}"))
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Prefill tokens/s (measured)")
            .unit("short")
            .datasource(ds)
            .with_target(target(q["prefill"], "{{node}}"))
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title(f"Time to first token, {TTFT_PROMPT_TOKENS}-token prompt (s)")
            .unit("s")
            .datasource(ds)
            .with_target(target(q["ttft"], "{{node}}"))
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Queue: requests processing and deferred")
            .unit("short")
            .datasource(ds)
            .with_target(target(q["queue_processing"], "processing {{node}}", "A"))
            .with_target(target(q["queue_deferred"], "deferred {{node}}", "B"))
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("Wired memory vs GPU limit (line: the lowest GPU limit)")
            .unit("bytes")
            .datasource(ds)
            .thresholds(steps(float(min(limits)) if limits else None, "green", "red"))
            .with_target(target(q["memory"], "{{node}}"))
            .height(8)
            .span(12)
        )
        .with_panel(
            stat.Panel()
            .title("Up")
            .datasource(ds)
            .with_target(target(q["up"], "{{job}} {{node}}"))
            .height(8)
            .span(12)
        )
    )
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(board.build(), cls=JSONEncoder))
