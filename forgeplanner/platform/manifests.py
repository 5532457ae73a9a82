"""Kubernetes manifests for a platform layout, as plain dicts (pure).

Every object uses stable APIs only (v1, apps/v1, discovery.k8s.io/v1), so the same files apply
to every Kubernetes minor K3s currently ships. Tests validate them with
`kubernetes-validate --strict` against `K8S_VERSION`.

What is rendered:
- a Namespace per product that was placed (monitoring, harbor, argocd, inference);
- a Deployment or StatefulSet per placed service, pinned to its node by the role label the
  layout gives that node (nodeSelector), with the telemetry taint tolerated by the telemetry
  pods only, and the resource requests the placement used (no request where upstream sets
  none);
- a Service per workload (headless for StatefulSets, as their serviceName);
- for inference, which runs natively on macOS, a Service without selector and an
  EndpointSlice pointing at the Mac's address (the Kubernetes way to name a server outside
  the cluster).

These manifests pin placement and requests; the products' own configuration (Harbor's
database, Argo CD's config maps, Prometheus' scrape config) comes from their upstream Helm
charts or install manifests, with the same nodeSelector/tolerations values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forgeplanner.domain.units import MiB
from forgeplanner.engine.platform_layout import (
    LABEL_PREFIX,
    TELEMETRY_TAINT,
    PlatformLayout,
)
from forgeplanner.engine.platform_services import ServiceSpec

# The Kubernetes minor the manifests are validated against (a recent minor that
# kubernetes-validate ships schemas for; the tests also validate against its newest). Only GA
# APIs are used (v1, apps/v1, discovery.k8s.io/v1, GA since Kubernetes 1.21), so the files
# apply to any current K3s release.
K8S_VERSION = "1.36"
PART_OF = "forgeplanner-platform"


def _cpu_qty(millicores: int) -> str:
    return f"{millicores}m"


def _mem_qty(n_bytes: int) -> str:
    if n_bytes % MiB == 0:
        return f"{n_bytes // MiB}Mi"
    return str(n_bytes)


def _labels(svc: ServiceSpec) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": svc.id,
        "app.kubernetes.io/component": svc.role,
        "app.kubernetes.io/part-of": PART_OF,
    }
    return out


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF}},
    }


def _resources(svc: ServiceSpec) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if svc.cpu_millicores is not None:
        requests["cpu"] = _cpu_qty(svc.cpu_millicores)
    if svc.memory_bytes is not None:
        requests["memory"] = _mem_qty(svc.memory_bytes)
    return {"requests": requests} if requests else {}


def workload(svc: ServiceSpec) -> dict[str, Any]:
    """Deployment or StatefulSet for one placed service."""
    labels = _labels(svc)
    pod_spec: dict[str, Any] = {
        "nodeSelector": {f"{LABEL_PREFIX}/{svc.role}": "true"},
        "containers": [
            {
                "name": svc.id[:63],
                "image": svc.image,
                "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}],
                "resources": _resources(svc),
            }
        ],
    }
    if svc.role == "telemetry":
        pod_spec["tolerations"] = [
            {
                "key": TELEMETRY_TAINT["key"],
                "operator": "Equal",
                "value": TELEMETRY_TAINT["value"],
                "effect": TELEMETRY_TAINT["effect"],
            }
        ]
    spec: dict[str, Any] = {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": svc.id}},
        # separate dict copies: a shared object would become a YAML anchor/alias
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if svc.kind == "StatefulSet":
        spec["serviceName"] = svc.id
    return {
        "apiVersion": "apps/v1",
        "kind": svc.kind,
        "metadata": {"name": svc.id, "namespace": svc.namespace, "labels": labels},
        "spec": spec,
    }


def service(svc: ServiceSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"app.kubernetes.io/name": svc.id},
        "ports": [{"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}],
    }
    if svc.kind == "StatefulSet":
        spec["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc.id, "namespace": svc.namespace, "labels": _labels(svc)},
        "spec": spec,
    }


def inference_objects(layout: PlatformLayout, addresses: Mapping[str, str]) -> list[dict[str, Any]]:
    """Service without selector + EndpointSlice with every inference Mac's address."""
    inf = [s for s in layout.services if s.role == "inference" and s.id in layout.assignments]
    if not inf:
        return []
    name = {"mlx": "mlx-server", "llama.cpp": "llama-server"}.get(layout.runtime, "ollama")
    port = inf[0].port
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "inference", "labels": labels},
        "spec": {"ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }
    endpoints = [
        {
            "addresses": [addresses[layout.assignments[s.id]]],
            "conditions": {"ready": True},
            "hostname": layout.assignments[s.id],
        }
        for s in inf
    ]
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-macs",
            "namespace": "inference",
            "labels": {**labels, "kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }
    return [svc, eps]


def render_manifests(
    layout: PlatformLayout, addresses: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """File name -> Kubernetes objects. Only placed services are rendered."""
    placed = [s for s in layout.services if s.id in layout.assignments and s.role != "inference"]
    files: dict[str, list[dict[str, Any]]] = {}
    namespaces = sorted({s.namespace for s in placed})
    inf = inference_objects(layout, addresses)
    if inf:
        namespaces.append("inference")
    files["00-namespaces.yaml"] = [namespace(ns) for ns in namespaces]
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for s in placed:
        by_ns.setdefault(s.namespace, []).extend([workload(s), service(s)])
    for i, ns in enumerate(sorted(by_ns), start=10):
        files[f"{i:02d}-{ns}.yaml"] = by_ns[ns]
    if inf:
        files["90-inference.yaml"] = inf
        from forgeplanner.platform.network_policy import inference_network_policies

        others = [ns for ns in namespaces if ns != "inference"]
        policies = inference_network_policies(layout, addresses, others)
        if policies:
            files["91-inference-network-policy.yaml"] = policies
    return files


def all_objects(files: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [obj for objs in files.values() for obj in objs]


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """One YAML stream (documents separated by ---). PyYAML quotes strings such as "true"."""
    import yaml

    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
