"""The GitOps repository, Prometheus configuration, rules and dashboard, checked with the real
tools: `kubectl kustomize` (kustomize v5 inside the official kubectl), `kubernetes-validate
--strict`, and Debian's promtool (`check config`, `check rules`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from forgeplanner.cli.main import main
from forgeplanner.platform import observability as obs
from forgeplanner.platform.gitops import (
    ENVIRONMENTS,
    read_repository,
    render_repository,
    write_repository,
)
from forgeplanner.platform.manifests import K8S_VERSION
from forgeplanner.platform.network_policy import CLIENT_LABEL
from forgeplanner.services.platform import mac_expectations
from tests.platform.shelf import build

SHELF = [
    "cp=mac-mini-2018-i3-8gb",
    "mini-1=mac-mini-2018-i7-32gb",
    "mini-2=mac-mini-2018-i5-16gb",
    "mini-3=mac-mini-2018-i7-16gb",
    "studio=mac-studio-m2-ultra-76c-192gb",
]
ARGO_KINDS = {"Application", "AppProject"}


@pytest.fixture(scope="module", params=["llama.cpp", "ollama"])
def repo(request, tmp_path_factory):
    result = build(SHELF, "llama-3.1-70b", "Q4_K_M", request.param)
    exp = mac_expectations(result.layout)
    files = render_repository(result.layout, result.addresses, exp)
    root = tmp_path_factory.mktemp("gitops")
    write_repository(files, root / "repo")
    return result, exp, files, root / "repo"


def _kustomize(kubectl: str, path: Path) -> list[dict]:
    proc = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"kustomize build {path}: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _argo_shape(obj: dict) -> None:
    """Argo CD's CRDs are not in kubernetes-validate; check the fields Argo CD documents
    (argo-cd.readthedocs.io: Application and AppProject specification)."""
    assert obj["apiVersion"] == "argoproj.io/v1alpha1"
    assert obj["metadata"]["namespace"] == "argocd"
    spec = obj["spec"]
    if obj["kind"] == "Application":
        assert set(spec) == {"project", "source", "destination", "syncPolicy"}
        src = spec["source"]
        assert set(src) in (
            {"repoURL", "targetRevision", "path"},
            {"repoURL", "targetRevision", "chart", "helm"},
        )
        assert set(spec["destination"]) == {"server", "namespace"}
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    else:
        assert {"sourceRepos", "destinations"} <= set(spec)


def test_every_kustomization_builds_and_validates_strictly(repo, kubectl):
    _result, _exp, files, root = repo
    dirs = sorted({str(Path(p).parent) for p in files if p.endswith("kustomization.yaml")})
    assert {f"apps/{e}" for e in ENVIRONMENTS} <= set(dirs)
    seen_kinds: set[str] = set()
    for d in dirs:
        objs = _kustomize(kubectl, root / d)
        assert objs, d
        for obj in objs:
            seen_kinds.add(obj["kind"])
            if obj["kind"] in ARGO_KINDS:
                _argo_shape(obj)
                continue
            for version in (K8S_VERSION, kubernetes_validate.utils.latest_version()):
                kubernetes_validate.validate(obj, version, strict=True)
    assert {
        "Application",
        "StatefulSet",
        "DaemonSet",
        "ConfigMap",
        "EndpointSlice",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    } <= seen_kinds


def test_app_of_apps_project_and_environments(repo, kubectl):
    _result, _exp, files, root = repo
    project = yaml.safe_load(files["bootstrap/project.yaml"])
    _argo_shape(project)
    for env in ENVIRONMENTS:
        root_app = yaml.safe_load(files[f"bootstrap/{env}/root.yaml"])
        _argo_shape(root_app)
        assert root_app["spec"]["source"]["path"] == f"apps/{env}"
        apps = _kustomize(kubectl, root / "apps" / env)
        names = {a["metadata"]["name"] for a in apps}
        assert {
            f"{c}-{env}"
            for c in ("monitoring", "harbor", "argocd", "inference", "namespaces", "policy")
        } == names
        for a in apps:
            src = a["spec"]["source"]
            assert src["repoURL"] in project["spec"]["sourceRepos"]
            dest = a["spec"]["destination"]
            assert dest in project["spec"]["destinations"]
            if "path" in src:
                assert src["path"].endswith(f"/overlays/{env}")
                assert (root / src["path"] / "kustomization.yaml").is_file()


def test_harbor_has_its_database_redis_registry_and_storage(repo):
    _result, _exp, files, _root = repo
    app = yaml.safe_load(files["apps/prod/harbor.yaml"])
    src = app["spec"]["source"]
    assert (src["repoURL"], src["chart"]) == ("https://helm.goharbor.io", "harbor")
    values = src["helm"]["valuesObject"]
    assert values["database"]["type"] == "internal" and values["redis"]["type"] == "internal"
    pvc = values["persistence"]["persistentVolumeClaim"]
    assert {"registry", "database", "redis"} <= set(pvc)
    assert values["persistence"]["imageChartStorage"]["type"] == "filesystem"
    sel = {"forgeplanner.io/registry": "true"}
    for comp in ("core", "registry", "jobservice", "portal"):
        assert values[comp]["nodeSelector"] == sel
    assert values["database"]["internal"]["nodeSelector"] == sel
    reg = yaml.safe_load(files["registry/projects.yaml"])
    assert reg["model_artifact"]["reference"] == "harbor.lab.internal/models/llama-3.1-70b:q4_k_m"
    assert {p["name"] for p in reg["projects"]} == {"dockerhub", "quay", "models"}


def test_prod_pulls_through_harbor_and_promotion_copies_lab_tags(repo, kubectl, tmp_path):
    _result, _exp, files, _root = repo
    root = tmp_path / "repo"
    write_repository(files, root)
    prod = _kustomize(kubectl, root / "components/monitoring/overlays/prod")
    images = [
        c["image"]
        for o in prod
        if "template" in o.get("spec", {})
        for c in o["spec"]["template"]["spec"]["containers"]
    ]
    assert images and all(i.startswith("harbor.lab.internal/") for i in images)
    lab_file = root / "components/monitoring/overlays/lab/kustomization.yaml"
    lab = yaml.safe_load(lab_file.read_text())
    prom = next(i for i in lab["images"] if i["name"].endswith("prometheus/prometheus"))
    prom["newTag"] = "v3.5.1"
    lab_file.write_text(yaml.safe_dump(lab))
    assert main(["platform", "promote", str(root), "--json"]) == 0
    prod = _kustomize(kubectl, root / "components/monitoring/overlays/prod")
    assert "harbor.lab.internal/quay/prometheus/prometheus:v3.5.1" in {
        c["image"]
        for o in prod
        if "template" in o.get("spec", {})
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert main(["platform", "promote", str(root)]) == 0  # nothing left to promote
    assert read_repository(root)["components/monitoring/overlays/prod/kustomization.yaml"]


def test_prometheus_config_and_rules_pass_promtool(repo, promtool, tmp_path):
    result, exp, files, _root = repo
    (tmp_path / "sa").mkdir()
    (tmp_path / "sa" / "token").write_text("token")
    (tmp_path / "sa" / "ca.crt").write_text("ca")
    (tmp_path / "rules").mkdir()
    cfg = obs.prometheus_config(result.layout, result.addresses, sa_dir=str(tmp_path / "sa"))
    jobs = {j["job_name"] for j in cfg["scrape_configs"]}
    assert {"node", "macos-node", "kubelet", "cadvisor", "k3s-apiserver"} <= jobs
    assert ("llamacpp" in jobs) == (result.layout.runtime == "llama.cpp")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    (tmp_path / obs.RULES_FILE).write_text(yaml.safe_dump(obs.alert_rules(result.layout, exp)))
    full = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert full.returncode == 0, full.stdout + full.stderr
    assert "1 rule files found" in full.stdout
    # the file as shipped in the repository's ConfigMap (in-cluster token paths)
    cm = next(
        o
        for o in yaml.safe_load_all(files["components/monitoring/base/monitoring.yaml"])
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "prometheus-config"
    )
    (tmp_path / "shipped.yml").write_text(cm["data"]["prometheus.yml"])
    (tmp_path / "shipped.rules.yml").write_text(cm["data"]["forgeplanner.rules.yml"])
    proc = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(tmp_path / "shipped.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "shipped.rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    alerts = {
        r["alert"]
        for g in yaml.safe_load(cm["data"]["forgeplanner.rules.yml"])["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert {"NodeDown", "InferenceServerDown", "GpuMemoryPressure"} <= alerts
    assert ("DecodeBelowEstimate" in alerts) == (result.layout.runtime == "llama.cpp")


def test_promtool_is_not_a_rubber_stamp(promtool, tmp_path):
    bad = {"groups": [{"name": "x", "rules": [{"alert": "A", "expr": "rate(up[5m]"}]}]}
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "bad.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0


def test_dashboard_json_is_grafana_schema_and_its_queries_parse(repo, promtool, tmp_path):
    from grafana_foundation_sdk.models.dashboard import Dashboard

    _result, exp, files, _root = repo
    cm = next(
        o
        for o in yaml.safe_load_all(files["components/monitoring/base/monitoring.yaml"])
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "grafana-dashboards"
    )
    board = json.loads(cm["data"]["forgeplanner-inference.json"])
    parsed = Dashboard.from_json(board)  # Grafana's own schema types read it back
    titles = [p.title for p in parsed.panels]
    assert any("Decode tokens/s" in t for t in titles)
    assert any("Time to first token" in t for t in titles)
    assert any("Queue" in t for t in titles)
    assert any("GPU limit" in t for t in titles)
    decode = next(p for p in board["panels"] if p["title"].startswith("Decode"))
    steps = decode["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[1]["value"] == pytest.approx(exp["studio"].decode_tps * 0.8)
    # every PromQL expression of the dashboard parses (promtool on recording rules)
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert set(exprs) <= set(obs.dashboard_queries().values())
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "dash.yml").write_text(yaml.safe_dump(rules))
    proc = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "dash.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_writes_the_repository_atomically(tmp_path, capsys):
    out = tmp_path / "gitops"
    args = [
        "platform",
        "layout",
        *[a for n in SHELF for a in ("--node", n)],
        "--model",
        "llama-3.1-8b",
        "--quant",
        "Q4_K_M",
        "--gitops",
        str(out),
        "--json",
    ]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert any(p.endswith("bootstrap/project.yaml") for p in d["written"])
    (out / ".git").mkdir()  # a user's own repository survives a re-render
    assert main(args) == 0
    assert (out / ".git").is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    bad = [*args[:-2], str(tmp_path / "other")]
    assert main(bad) == 2
    assert "holds no GitOps repository" in capsys.readouterr().err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_kustomize_cli_runs_from_this_environment(kubectl):
    proc = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Kustomize Version: v5" in proc.stdout
    assert Path(kubectl).parent == Path(sys.executable).parent


def test_only_labelled_pods_reach_the_macs_and_prometheus_is_one(repo, kubectl):
    """The inference Macs' servers have no authentication: the repository carries the same
    NetworkPolicies as the plain manifests, and the pods that must reach the Macs (Prometheus,
    the blackbox exporter) carry the inference-client label."""
    result, _exp, _files, root = repo
    objs = _kustomize(kubectl, root / "components/inference/overlays/prod")
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    mac = result.addresses["studio"]
    assert {p["metadata"]["namespace"] for p in policies} >= {"monitoring"}
    for p in policies:
        assert p["spec"]["podSelector"]["matchExpressions"][0]["key"] == CLIENT_LABEL
        blocked = [b["ipBlock"]["except"] for r in p["spec"]["egress"] for b in r["to"]
                   if "ipBlock" in b]  # fmt: skip
        assert [f"{mac}/32"] in blocked
    monitoring = _kustomize(kubectl, root / "components/monitoring/overlays/prod")
    clients = {
        o["metadata"]["name"]
        for o in monitoring
        if o["kind"] in ("StatefulSet", "Deployment")
        and o["spec"]["template"]["metadata"]["labels"].get(CLIENT_LABEL) == "true"
    }
    assert "prometheus" in clients
    assert ("blackbox-exporter" in clients) == (result.layout.runtime != "llama.cpp")
    assert "grafana" not in clients  # it reads Prometheus, never the Macs
