"""A GitOps repository for the shelf (learning track module 04): Argo CD, kustomize, Harbor and
the promotion pattern. Rendering is pure (`render_repository` -> {path: text});
`write_repository` writes the tree atomically.

Layout:

    bootstrap/project.yaml              Argo CD AppProject `shelf`: this repository, the
                                        chart repositories, the namespaces it may deploy to
    bootstrap/<env>/root.yaml           the app of apps: one Application that syncs apps/<env>
    apps/<env>/<component>.yaml         one Application per component (kustomize overlay or
                                        Helm chart), with kustomization.yaml listing them
    components/<component>/base/        the component's manifests (kustomize base)
    components/<component>/overlays/<env>/
                                        per environment: labels and the image tags it runs
    registry/projects.yaml              Harbor projects: `dockerhub`, `quay` (proxy caches of
                                        the image registries) and `models` (model files as
                                        OCI artifacts)
    PROMOTION.md, README.md             how a change moves lab -> prod, how to bootstrap

Environments: `lab` runs what was just changed; `prod` runs what was promoted. Promotion is a
commit that copies the lab overlay's image tags (and chart versions) into prod
(`forgeplanner platform promote DIR`), so prod only ever runs what lab ran first. In prod the
images are pulled through Harbor (`images:` rewrites to Harbor's proxy-cache projects), so
models and container images come from one registry, as module 04 argues.

Harbor is installed from its official Helm chart (goharbor/harbor-helm) with its database
(internal PostgreSQL), Redis, registry, job service and persistent storage set in the chart
values, each pinned to the registry node; Argo CD manages itself from the argo-cd chart
(argoproj/argo-helm) pinned to the GitOps node. Prometheus, Grafana, Loki, Tempo, node_exporter
and the blackbox exporter are plain manifests with ForgePlanner's scrape config, rules and
dashboard (forgeplanner.platform.observability).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeplanner.engine.platform_layout import LABEL_PREFIX, TELEMETRY_TAINT, PlatformLayout
from forgeplanner.errors import ForgePlannerError
from forgeplanner.platform import observability as obs
from forgeplanner.platform.admission import admission_objects
from forgeplanner.platform.manifests import (
    PART_OF,
    inference_objects,
    namespace,
    service,
    to_yaml,
    workload,
)
from forgeplanner.platform.network_policy import CLIENT_LABEL, inference_network_policies

ENVIRONMENTS: tuple[str, ...] = ("lab", "prod")
IN_CLUSTER = "https://kubernetes.default.svc"
ARGOCD_NS = "argocd"
PROJECT = "shelf"
# Chart repositories and versions (the charts' own repositories; versions pinned, promoted).
HARBOR_CHART = ("https://helm.goharbor.io", "harbor", "1.17.0")  # Harbor v2.13.0
ARGOCD_CHART = ("https://argoproj.github.io/argo-helm", "argo-cd", "8.2.5")  # Argo CD v3.0/3.1
NODE_EXPORTER_IMAGE = "quay.io/prometheus/node-exporter:v1.9.1"
BLACKBOX_IMAGE = "quay.io/prometheus/blackbox-exporter:v0.27.0"
# Harbor persistent volumes (chart value names); sizes are this tool's starting points.
HARBOR_STORAGE = {
    "registry": "200Gi",  # images and model files: the big one
    "database": "5Gi",
    "redis": "1Gi",
    "trivy": "5Gi",
}
HARBOR_COMPONENTS = ("core", "portal", "registry", "jobservice", "exporter", "trivy", "nginx")


@dataclass(frozen=True, slots=True)
class GitOpsOptions:
    repo_url: str = "https://git.lab.internal/shelf/platform.git"
    revision: str = "main"
    registry_host: str = "harbor.lab.internal"
    destinations: Mapping[str, str] = field(
        default_factory=lambda: {env: IN_CLUSTER for env in ENVIRONMENTS}
    )


def _y(objs: list[dict[str, Any]]) -> str:
    return to_yaml(objs)


def _kustomization(resources: list[str], **extra: Any) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    doc.update(extra)
    return to_yaml([doc])


def _application(
    name: str, env: str, dest_ns: str, source: dict[str, Any], opts: GitOpsOptions
) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": f"{name}-{env}",
            "namespace": ARGOCD_NS,
            "labels": {"app.kubernetes.io/part-of": PART_OF, f"{LABEL_PREFIX}/env": env},
            # deleting an Application deletes what it deployed (Argo CD's resources finalizer)
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": PROJECT,
            "source": source,
            "destination": {"server": opts.destinations[env], "namespace": dest_ns},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
            },
        },
    }


def _git_source(path: str, opts: GitOpsOptions) -> dict[str, Any]:
    return {"repoURL": opts.repo_url, "targetRevision": opts.revision, "path": path}


def _node_selector(role: str) -> dict[str, str]:
    return {f"{LABEL_PREFIX}/{role}": "true"}


def harbor_values(opts: GitOpsOptions) -> dict[str, Any]:
    """goharbor/harbor-helm values: internal database and Redis, filesystem storage on PVCs,
    every component on the registry node."""
    sel = _node_selector("registry")
    values: dict[str, Any] = {
        "externalURL": f"https://{opts.registry_host}",
        "expose": {
            "type": "ingress",
            "ingress": {"hosts": {"core": opts.registry_host}, "className": "traefik"},
            "tls": {"enabled": True, "certSource": "auto"},
        },
        "persistence": {
            "enabled": True,
            "resourcePolicy": "keep",
            "persistentVolumeClaim": {
                "registry": {"size": HARBOR_STORAGE["registry"]},
                "database": {"size": HARBOR_STORAGE["database"]},
                "redis": {"size": HARBOR_STORAGE["redis"]},
                "trivy": {"size": HARBOR_STORAGE["trivy"]},
            },
            "imageChartStorage": {"type": "filesystem"},
        },
        "database": {"type": "internal", "internal": {"nodeSelector": dict(sel)}},
        "redis": {"type": "internal", "internal": {"nodeSelector": dict(sel)}},
    }
    for comp in HARBOR_COMPONENTS:
        values[comp] = {"nodeSelector": dict(sel)}
    return values


def argocd_values() -> dict[str, Any]:
    sel = _node_selector("gitops")
    return {
        "global": {"nodeSelector": dict(sel)},
        "configs": {"params": {"server.insecure": True}},
    }


def _monitoring_objects(
    layout: PlatformLayout,
    addresses: Mapping[str, str],
    expectations: Mapping[str, obs.MacExpectation],
) -> list[dict[str, Any]]:
    import yaml

    placed = [s for s in layout.services if s.id in layout.assignments and s.role == "telemetry"]
    objs: list[dict[str, Any]] = []
    cm_labels = {"app.kubernetes.io/part-of": PART_OF}
    prom_cfg = obs.prometheus_config(layout, addresses)
    rules = obs.alert_rules(layout, expectations)
    dash = obs.grafana_dashboard(layout, expectations)
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "prometheus-config",
                "namespace": "monitoring",
                "labels": cm_labels,
            },
            "data": {
                "prometheus.yml": yaml.safe_dump(prom_cfg, sort_keys=False),
                "forgeplanner.rules.yml": yaml.safe_dump(rules, sort_keys=False),
            },
        }
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "grafana-dashboards",
                "namespace": "monitoring",
                "labels": {**cm_labels, "grafana_dashboard": "1"},
            },
            "data": {"forgeplanner-inference.json": json.dumps(dash, indent=2)},
        }
    )
    objs += _prometheus_rbac()
    for s in placed:
        w = workload(s)
        if s.id == "prometheus":
            # it scrapes the Macs (node_exporter, llama-server /metrics): an inference client
            # for the NetworkPolicy that keeps every other pod away from them
            w["spec"]["template"]["metadata"]["labels"][CLIENT_LABEL] = "true"
            pod = w["spec"]["template"]["spec"]
            pod["serviceAccountName"] = "prometheus"
            c = pod["containers"][0]
            c["args"] = [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
            ]
            c["volumeMounts"] = [
                {
                    "name": "config",
                    "mountPath": "/etc/prometheus/prometheus.yml",
                    "subPath": "prometheus.yml",
                },
                {
                    "name": "config",
                    "mountPath": "/etc/prometheus/" + obs.RULES_FILE,
                    "subPath": "forgeplanner.rules.yml",
                },
                {"name": "data", "mountPath": "/prometheus"},
            ]
            pod["volumes"] = [{"name": "config", "configMap": {"name": "prometheus-config"}}]
            w["spec"]["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "50Gi"}},
                    },
                }
            ]
        if s.id == "grafana":
            pod = w["spec"]["template"]["spec"]
            pod["containers"][0]["volumeMounts"] = [
                {"name": "dashboards", "mountPath": "/var/lib/grafana/dashboards/forgeplanner"}
            ]
            pod["volumes"] = [{"name": "dashboards", "configMap": {"name": "grafana-dashboards"}}]
        objs += [w, service(s)]
    objs += _node_exporter(layout)
    if layout.runtime in ("ollama", "mlx") and any(
        s.role == "inference" and s.id in layout.assignments for s in layout.services
    ):
        objs += _blackbox()
    return objs


def _prometheus_rbac() -> list[dict[str, Any]]:
    """What Prometheus' token may read: node and kubelet metrics, and /metrics."""
    labels = {"app.kubernetes.io/part-of": PART_OF}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "prometheus", "namespace": "monitoring", "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "forgeplanner-prometheus", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "nodes/metrics"],
                    "verbs": ["get", "list", "watch"],
                },
                {"nonResourceURLs": ["/metrics", "/metrics/cadvisor"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "forgeplanner-prometheus", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "forgeplanner-prometheus",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}
            ],
        },
    ]


def _node_exporter(layout: PlatformLayout) -> list[dict[str, Any]]:
    if not any(n.k3s for n in layout.nodes):
        return []
    labels = {"app.kubernetes.io/name": "node-exporter", "app.kubernetes.io/part-of": PART_OF}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "node-exporter", "namespace": "monitoring", "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "node-exporter"}},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "hostNetwork": True,
                        "hostPID": True,
                        # every node, the dedicated server and telemetry node included
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "node-exporter",
                                "image": NODE_EXPORTER_IMAGE,
                                "args": ["--path.rootfs=/host"],
                                "ports": [
                                    {"name": "metrics", "containerPort": obs.NODE_EXPORTER_PORT}
                                ],
                                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                                "volumeMounts": [
                                    {"name": "root", "mountPath": "/host", "readOnly": True}
                                ],
                            }
                        ],
                        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                    },
                },
            },
        }
    ]


def _blackbox() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "blackbox-exporter", "app.kubernetes.io/part-of": PART_OF}
    tel = TELEMETRY_TAINT
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "blackbox-exporter", "namespace": "monitoring", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "blackbox-exporter"}},
                "template": {
                    # it probes the Macs' APIs: an inference client (see CLIENT_LABEL)
                    "metadata": {"labels": {**labels, CLIENT_LABEL: "true"}},
                    "spec": {
                        "nodeSelector": _node_selector("telemetry"),
                        "tolerations": [
                            {
                                "key": tel["key"],
                                "operator": "Equal",
                                "value": tel["value"],
                                "effect": tel["effect"],
                            }
                        ],
                        "containers": [
                            {
                                "name": "blackbox-exporter",
                                "image": BLACKBOX_IMAGE,
                                "ports": [{"name": "http", "containerPort": 9115}],
                                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "blackbox-exporter", "namespace": "monitoring", "labels": labels},
            "spec": {
                "selector": {"app.kubernetes.io/name": "blackbox-exporter"},
                "ports": [{"name": "http", "port": 9115, "targetPort": "http"}],
            },
        },
    ]


def _images(objs: list[dict[str, Any]]) -> list[str]:
    out: set[str] = set()
    for o in objs:
        tmpl = o.get("spec", {}).get("template", {}).get("spec", {})
        for c in tmpl.get("containers", []):
            out.add(c["image"])
    return sorted(out)


def _split_image(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    return (name, tag) if name and "/" not in tag else (image, "latest")


# Harbor proxy-cache projects, one per upstream registry (a proxy-cache project mirrors exactly
# one registry endpoint: goharbor.io/docs "Configure Proxy Cache").
PROXY_PROJECTS = {"docker.io": "dockerhub", "quay.io": "quay"}


def harbor_name(image_name: str, registry_host: str) -> str:
    """docker.io/grafana/grafana -> HOST/dockerhub/grafana/grafana (an image without a
    registry is docker.io's)."""
    first, _, rest = image_name.partition("/")
    if "." in first and rest:
        upstream, path = first, rest
    else:
        upstream, path = "docker.io", image_name
    project = PROXY_PROJECTS.get(upstream, "platform")
    return f"{registry_host}/{project}/{path}"


def _overlay(env: str, images: list[str], opts: GitOpsOptions) -> str:
    entries = []
    for image in images:
        name, tag = _split_image(image)
        entry: dict[str, str] = {"name": name, "newTag": tag}
        if env == "prod":
            # pulled through Harbor's proxy-cache projects: one registry for images and models
            entry["newName"] = harbor_name(name, opts.registry_host)
        entries.append(entry)
    extra: dict[str, Any] = {
        "labels": [{"pairs": {f"{LABEL_PREFIX}/env": env}, "includeSelectors": False}]
    }
    if entries:
        extra["images"] = entries
    return _kustomization(["../../base"], **extra)


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    namespace: str
    objects: tuple[dict[str, Any], ...] = ()  # kustomize base; empty for a Helm chart
    chart: tuple[str, str, str] | None = None  # (repoURL, chart, version)
    values: dict[str, Any] | None = None


def components(
    layout: PlatformLayout,
    addresses: Mapping[str, str],
    expectations: Mapping[str, obs.MacExpectation],
    policy_objects: list[dict[str, Any]],
    opts: GitOpsOptions,
) -> list[Component]:
    out: list[Component] = []
    placed_roles = {s.role for s in layout.services if s.id in layout.assignments}
    namespaces = sorted({s.namespace for s in layout.services if s.id in layout.assignments})
    out.append(Component("namespaces", "default", tuple(namespace(ns) for ns in namespaces)))
    if "telemetry" in placed_roles:
        objs = _monitoring_objects(layout, addresses, expectations)
        out.append(Component("monitoring", "monitoring", tuple(objs)))
    if "registry" in placed_roles:
        out.append(Component("harbor", "harbor", chart=HARBOR_CHART, values=harbor_values(opts)))
    if "gitops" in placed_roles:
        out.append(Component("argocd", ARGOCD_NS, chart=ARGOCD_CHART, values=argocd_values()))
    inf = inference_objects(layout, addresses)
    if inf:
        # the Macs' servers have no authentication: in every other namespace of the platform
        # only pods labelled as inference clients may reach them (as the plain manifests)
        others = [ns for ns in namespaces if ns != "inference"]
        inf += inference_network_policies(layout, addresses, others)
        out.append(Component("inference", "inference", tuple(inf)))
    if policy_objects:
        out.append(Component("policy", "default", tuple(policy_objects)))
    return out


def app_project(comps: list[Component], opts: GitOpsOptions) -> dict[str, Any]:
    repos = [opts.repo_url, *sorted({c.chart[0] for c in comps if c.chart})]
    servers = sorted(set(opts.destinations.values()))
    dests = sorted({(opts.destinations[e], c.namespace) for e in ENVIRONMENTS for c in comps})
    dests = sorted(set(dests) | {(s, ARGOCD_NS) for s in servers})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {
            "name": PROJECT,
            "namespace": ARGOCD_NS,
            "labels": {"app.kubernetes.io/part-of": PART_OF},
        },
        "spec": {
            "description": "The shelf's platform, as planned by ForgePlanner",
            "sourceRepos": repos,
            "destinations": [{"server": s, "namespace": ns} for s, ns in dests],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }


def registry_projects(layout: PlatformLayout, opts: GitOpsOptions) -> dict[str, Any]:
    """Harbor projects and the model-artifact path (a reviewed file, applied through Harbor's
    API or UI; Harbor has no CRDs)."""
    model_ref = None
    if layout.model_id is not None:
        tag = (layout.quant or "latest").lower()
        model_ref = f"{opts.registry_host}/models/{layout.model_id}:{tag}"
    return {
        "registry": opts.registry_host,
        "projects": [
            *(
                {
                    "name": project,
                    "purpose": f"proxy cache of {upstream}: prod pulls every image through Harbor",
                    "proxy_cache": upstream,
                }
                for upstream, project in PROXY_PROJECTS.items()
            ),
            {
                "name": "models",
                "purpose": "model files (GGUF, MLX folders) as OCI artifacts, pushed with oras",
                "artifact_path": f"{opts.registry_host}/models/<model-id>:<quant>",
            },
        ],
        "model_artifact": None
        if model_ref is None
        else {
            "reference": model_ref,
            "push": f"oras push {model_ref} ./model.gguf:application/vnd.gguf.model",
            "pull": f"oras pull {model_ref} -o ./models",
        },
    }


def render_repository(
    layout: PlatformLayout,
    addresses: Mapping[str, str],
    expectations: Mapping[str, obs.MacExpectation],
    opts: GitOpsOptions | None = None,
    policy_objects: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Relative path -> file text for the whole repository."""
    import yaml

    opts = opts or GitOpsOptions()
    if policy_objects is None:
        policy_objects = admission_objects(None, layout, opts.registry_host, expectations)
    comps = components(layout, addresses, expectations, policy_objects, opts)
    files: dict[str, str] = {}
    for c in comps:
        if c.chart is not None:
            continue
        base = f"components/{c.name}/base"
        files[f"{base}/{c.name}.yaml"] = _y(list(c.objects))
        files[f"{base}/kustomization.yaml"] = _kustomization([f"{c.name}.yaml"])
        for env in ENVIRONMENTS:
            files[f"components/{c.name}/overlays/{env}/kustomization.yaml"] = _overlay(
                env, _images(list(c.objects)), opts
            )
    files["bootstrap/project.yaml"] = _y([app_project(comps, opts)])
    for env in ENVIRONMENTS:
        names = []
        for c in comps:
            if c.chart is not None:
                repo, chart, version = c.chart
                source = {
                    "repoURL": repo,
                    "chart": chart,
                    "targetRevision": version,
                    "helm": {"releaseName": c.name, "valuesObject": c.values or {}},
                }
            else:
                source = _git_source(f"components/{c.name}/overlays/{env}", opts)
            files[f"apps/{env}/{c.name}.yaml"] = _y(
                [_application(c.name, env, c.namespace, source, opts)]
            )
            names.append(f"{c.name}.yaml")
        files[f"apps/{env}/kustomization.yaml"] = _kustomization(names)
        root = _application("shelf-root", env, ARGOCD_NS, _git_source(f"apps/{env}", opts), opts)
        files[f"bootstrap/{env}/root.yaml"] = _y([root])
    files["registry/projects.yaml"] = yaml.safe_dump(
        registry_projects(layout, opts), sort_keys=False
    )
    files["PROMOTION.md"] = PROMOTION_MD
    files["README.md"] = _readme(layout, comps, opts)
    return files


PROMOTION_MD = """# Promotion: lab -> prod

1. Change `components/<name>/overlays/lab/kustomization.yaml` (an image tag) or
   `apps/lab/<name>.yaml` (a chart version), commit, push. Argo CD syncs `lab`.
2. Watch it on the lab cluster: the Grafana dashboard "ForgePlanner: inference on the shelf",
   the alerts, `forgeplanner bench import prometheus` into the plan, the governance gate.
3. Promote: `forgeplanner platform promote .` copies the lab overlays' image tags and the lab
   Applications' chart versions into prod; review the diff, commit ("promote: ..."), push.
   Argo CD syncs `prod`, which pulls every image through Harbor's proxy-cache projects.

Prod never runs a tag that lab did not run first: the promotion commit is the only way in.
"""


def _readme(layout: PlatformLayout, comps: list[Component], opts: GitOpsOptions) -> str:
    lines = [
        "# The shelf's platform (GitOps)",
        "",
        "Generated by `forgeplanner platform layout ... --gitops DIR`; review, commit, push to "
        f"{opts.repo_url}.",
        "",
        "Bootstrap (once per cluster):",
        "",
        "```sh",
        f"helm install argo-cd argo-cd --repo {ARGOCD_CHART[0]} --version {ARGOCD_CHART[2]} "
        f"-n {ARGOCD_NS} --create-namespace",
        "kubectl apply -f bootstrap/project.yaml",
        "kubectl apply -f bootstrap/lab/root.yaml     # or bootstrap/prod/root.yaml",
        "```",
        "",
        "Components: " + ", ".join(c.name for c in comps) + ".",
        "",
        "Check locally: `kubectl kustomize components/<name>/overlays/lab`, "
        "`promtool check rules` on the rules in components/monitoring/base.",
        "",
    ]
    return "\n".join(lines)


def promote(files: Mapping[str, str], src: str = "lab", dst: str = "prod") -> dict[str, str]:
    """The files a promotion changes: every prod overlay takes the lab overlay's image tags
    (keeping prod's registry rewrite), every prod Application takes the lab chart version."""
    import yaml

    changed: dict[str, str] = {}
    for path, text in files.items():
        parts = path.split("/")
        if len(parts) == 5 and parts[0] == "components" and parts[3] == src:
            dst_path = "/".join([*parts[:3], dst, parts[4]])
            if dst_path not in files:
                continue
            lab = yaml.safe_load(text)
            prod = yaml.safe_load(files[dst_path])
            tags = {i["name"]: i["newTag"] for i in lab.get("images", [])}
            for img in prod.get("images", []):
                if img["name"] in tags and img.get("newTag") != tags[img["name"]]:
                    img["newTag"] = tags[img["name"]]
            new = to_yaml([prod])
            if new != files[dst_path]:
                changed[dst_path] = new
        if (
            len(parts) == 3
            and parts[0] == "apps"
            and parts[1] == src
            and parts[2] != ("kustomization.yaml")
        ):
            dst_path = f"apps/{dst}/{parts[2]}"
            if dst_path not in files:
                continue
            lab_src = yaml.safe_load(text)["spec"]["source"]
            prod_doc = yaml.safe_load(files[dst_path])
            if (
                "chart" in lab_src
                and prod_doc["spec"]["source"].get("targetRevision") != (lab_src["targetRevision"])
            ):
                prod_doc["spec"]["source"]["targetRevision"] = lab_src["targetRevision"]
                changed[dst_path] = to_yaml([prod_doc])
    return changed


def write_repository(files: Mapping[str, str], directory: str | os.PathLike[str]) -> list[Path]:
    """Write the tree atomically: into a temporary sibling directory first, then swapped in
    place of DIR (a previous tree is replaced whole, so no stale file survives)."""
    target = Path(directory)
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise ForgePlannerError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / "bootstrap").is_dir():
        raise ForgePlannerError(
            f"{target}: directory is not empty and holds no GitOps repository written by "
            "ForgePlanner; choose an empty or new directory"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        for rel, text in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if target.exists():
            # keep the user's own .git (and anything else hidden) across a re-render
            for hidden in target.iterdir():
                if hidden.name.startswith("."):
                    os.replace(hidden, tmp / hidden.name)
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            os.replace(target, old / "tree")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / rel for rel in sorted(files)]


def read_repository(directory: str | os.PathLike[str]) -> dict[str, str]:
    root = Path(directory)
    if not (root / "bootstrap").is_dir():
        raise ForgePlannerError(f"{root}: not a GitOps repository written by ForgePlanner")
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def promote_directory(directory: str) -> list[str]:
    """`platform promote DIR`: copy lab's tags and chart versions into prod, file by file
    (each written atomically). Returns the changed paths."""
    from forgeplanner.fileio import atomic_write

    files = read_repository(directory)
    changed = promote(files)
    for rel, text in sorted(changed.items()):
        atomic_write(Path(directory) / rel, text.encode("utf-8"))
    return sorted(changed)
