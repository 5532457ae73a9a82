"""The platform's services and the resource requests ForgePlanner places them by, with sources.

Requests come from upstream manifests, Helm chart defaults or sizing documentation, each cited.
Where upstream sets no request (the Loki and Tempo charts ship `resources: {}`), the request is
left unset (None) and said so: those services live on the dedicated telemetry node, where
nothing else competes for what they use.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.domain.units import GiB, MiB

ROLES: tuple[str, ...] = ("control-plane", "worker", "telemetry", "registry", "gitops", "inference")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    name: str
    role: str  # one of ROLES (the node role it gives its node)
    namespace: str
    kind: str  # "Deployment" | "StatefulSet"
    image: str
    port: int
    cpu_millicores: int | None  # None = upstream sets no request
    memory_bytes: int | None
    source: str
    part_of: str = ""  # product the component belongs to ("argo-cd", ...)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "namespace": self.namespace,
            "kind": self.kind,
            "image": self.image,
            "cpu_millicores": self.cpu_millicores,
            "memory_bytes": self.memory_bytes,
            "source": self.source,
        }


KUBE_PROMETHEUS = "prometheus-operator/kube-prometheus manifests/"
OPENSHIFT_GITOPS = (
    "Red Hat OpenShift GitOps 1.20 'Sizing requirements for GitOps' (default requests of the "
    "Argo CD workloads), docs.redhat.com/en/documentation/red_hat_openshift_gitops/1.20/html/"
    "installing_gitops/preparing-gitops-install"
)

TELEMETRY: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "prometheus", "Prometheus", "telemetry", "monitoring", "StatefulSet",
        "quay.io/prometheus/prometheus:v3.5.0", 9090, None, 400 * MiB,
        KUBE_PROMETHEUS + "prometheus-prometheus.yaml (requests memory 400Mi, no CPU request)",
    ),
    ServiceSpec(
        "grafana", "Grafana", "telemetry", "monitoring", "Deployment",
        "docker.io/grafana/grafana:12.1.0", 3000, 100, 100 * MiB,
        KUBE_PROMETHEUS + "grafana-deployment.yaml (requests cpu 100m, memory 100Mi)",
    ),
    ServiceSpec(
        "loki", "Loki (single binary)", "telemetry", "monitoring", "StatefulSet",
        "docker.io/grafana/loki:3.5.0", 3100, None, None,
        "grafana/loki Helm chart: singleBinary.resources defaults to {} (no request)",
    ),
    ServiceSpec(
        "tempo", "Tempo (monolithic)", "telemetry", "monitoring", "StatefulSet",
        "docker.io/grafana/tempo:2.8.0", 3200, None, None,
        "grafana/tempo Helm chart: tempo.resources defaults to {} (no request)",
    ),
)  # fmt: skip

REGISTRY: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "harbor", "Harbor", "registry", "harbor", "StatefulSet",
        "docker.io/goharbor/harbor-core:v2.13.0", 8080, 2000, 4 * GiB,
        "goharbor.io/docs/latest/install-config/installation-prereqs: minimum 2 CPU, 4 GB "
        "memory for a Harbor installation (recommended 4 CPU, 8 GB); placed as one unit",
    ),
)  # fmt: skip

GITOPS: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "argocd-application-controller", "Argo CD application controller", "gitops", "argocd",
        "StatefulSet", "quay.io/argoproj/argocd:v3.1.0", 8082, 250, 1024 * MiB, OPENSHIFT_GITOPS,
        "argo-cd",
    ),
    ServiceSpec(
        "argocd-applicationset-controller", "Argo CD ApplicationSet controller", "gitops",
        "argocd", "Deployment", "quay.io/argoproj/argocd:v3.1.0", 7000, 250, 512 * MiB,
        OPENSHIFT_GITOPS, "argo-cd",
    ),
    ServiceSpec(
        "argocd-repo-server", "Argo CD repo server", "gitops", "argocd", "Deployment",
        "quay.io/argoproj/argocd:v3.1.0", 8081, 250, 256 * MiB, OPENSHIFT_GITOPS, "argo-cd",
    ),
    ServiceSpec(
        "argocd-server", "Argo CD API server and UI", "gitops", "argocd", "Deployment",
        "quay.io/argoproj/argocd:v3.1.0", 8080, 125, 128 * MiB, OPENSHIFT_GITOPS, "argo-cd",
    ),
    ServiceSpec(
        "argocd-redis", "Argo CD Redis", "gitops", "argocd", "Deployment",
        "docker.io/library/redis:7.2-alpine", 6379, 250, 128 * MiB, OPENSHIFT_GITOPS, "argo-cd",
    ),
)  # fmt: skip

PLATFORM_SERVICES: tuple[ServiceSpec, ...] = TELEMETRY + REGISTRY + GITOPS

# What K3s itself uses on a node, reserved before placing services. docs.k3s.io/reference/
# resource-profiling ("Minimum Resource Requirements for K3s", K3s v1.26.5, Intel 8375C):
# K3s server with a workload 6 % of a core and 1596 M RAM (Kine/SQLite); K3s agent 3 % of a
# core and 275 M.
K3S_SERVER_CPU_MILLICORES = 60
K3S_SERVER_MEMORY_BYTES = 1596 * 10**6
K3S_AGENT_CPU_MILLICORES = 30
K3S_AGENT_MEMORY_BYTES = 275 * 10**6
K3S_RESERVATION_SOURCE = (
    "docs.k3s.io/reference/resource-profiling: K3s server with a workload 6% of a core, "
    "1596 M (Kine/SQLite); K3s agent 3% of a core, 275 M"
)

# The host OS's own memory is not reserved: no sourced figure for Ubuntu Server on these minis
# was found, so the layout says so in its notes instead of guessing one.

OLLAMA_PORT = 11434  # Ollama's default (docs: OLLAMA_HOST default 127.0.0.1:11434)
MLX_SERVER_PORT = 8080  # mlx_lm.server default port
# llama.cpp's llama-server default port (tools/server README: --port, default 8080); with
# --metrics it serves Prometheus metrics at /metrics.
LLAMACPP_SERVER_PORT = 8080


def inference_service(runtime: str, node: str) -> ServiceSpec:
    """The inference server on one Apple Silicon node (runs natively on macOS; see
    platform_layout for why it is not a pod)."""
    if runtime == "llama.cpp":
        return ServiceSpec(
            f"llama-server-{node}", f"llama.cpp server on {node}", "inference", "inference",
            "External", "llama-server (native on macOS)", LLAMACPP_SERVER_PORT, None, None,
            "llama.cpp tools/server: default port 8080, Prometheus metrics with --metrics",
        )  # fmt: skip
    if runtime == "mlx":
        return ServiceSpec(
            f"mlx-server-{node}", f"MLX server on {node}", "inference", "inference", "External",
            "mlx_lm.server (native on macOS)", MLX_SERVER_PORT, None, None,
            "mlx-lm mlx_lm.server, default port 8080",
        )  # fmt: skip
    return ServiceSpec(
        f"ollama-{node}", f"Ollama on {node}", "inference", "inference", "External",
        "ollama (native on macOS)", OLLAMA_PORT, None, None,
        "Ollama, default port 11434 (OLLAMA_HOST)",
    )  # fmt: skip
