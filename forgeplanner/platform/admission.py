"""The gate's policy in the cluster: Kubernetes ValidatingAdmissionPolicy objects (GA in
admissionregistration.k8s.io/v1 since Kubernetes 1.30), so policy lives in the cluster and is
enforced at its boundary, the API server (learning track module 07). Pure: dicts out.

Three policies, each with its binding:

- `forgeplanner-inference-memory`: a pod that asks for an inference node (nodeSelector
  forgeplanner.io/inference=true) must request memory, and no more than the GPU budget of the
  smallest inference Mac less the gate policy's headroom. Above budget-less-headroom but within
  the budget the pod is admitted with a warning and an audit annotation (the gate's ESCALATE);
  above the budget it is denied (DENY). CEL's Kubernetes quantity library (`quantity()`,
  `compareTo`) compares the request with the limit.
- `forgeplanner-registry`: in namespaces labelled forgeplanner.io/env=prod every container
  image comes from the lab's registry (Harbor), as the GitOps prod overlay rewrites them.
- `forgeplanner-required-labels`: workloads carry app.kubernetes.io/name and
  app.kubernetes.io/part-of, which the dashboards, alerts and evidence use to name them.

`validationActions` follows the gate: Deny for DENY, Warn + Audit for ESCALATE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forgeplanner.engine.platform_layout import LABEL_PREFIX

if TYPE_CHECKING:
    from forgeplanner.engine.platform_layout import PlatformLayout
    from forgeplanner.governance.policy import Policy
    from forgeplanner.platform.observability import MacExpectation

API = "admissionregistration.k8s.io/v1"
PART_OF = "forgeplanner-platform"
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
_WORKLOADS = {
    "apiGroups": ["apps"],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["deployments", "statefulsets", "daemonsets"],
}
_PODS = {
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "operations": ["CREATE", "UPDATE"],
    "resources": ["pods"],
}


def _mi(n_bytes: int) -> str:
    """A Kubernetes quantity in whole MiB, rounded down (never above the limit)."""
    return f"{n_bytes // 2**20}Mi"


def _policy(name: str, rules: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            **spec,
        },
    }


def _binding(
    name: str, actions: list[str], namespace_selector: dict[str, Any] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": name, "validationActions": actions}
    if namespace_selector is not None:
        spec["matchResources"] = {"namespaceSelector": namespace_selector}
    return {
        "apiVersion": API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {
            "name": f"{name}-{'-'.join(a.lower() for a in actions)}",
            "labels": {"app.kubernetes.io/part-of": PART_OF},
        },
        "spec": spec,
    }


def memory_limits(
    policy: Policy | None, expectations: Mapping[str, MacExpectation]
) -> tuple[int, int] | None:
    """(escalate above, deny above) in bytes: the smallest inference Mac's GPU limit less the
    policy's headroom, and the limit itself. None without a known limit."""
    limits = [e.gpu_limit_bytes for e in expectations.values() if e.gpu_limit_bytes]
    if not limits:
        return None
    limit = min(limits)
    headroom = 0
    if policy is not None and policy.memory is not None:
        headroom = int(policy.memory.min_headroom_gib * 2**30)
    return max(limit - headroom, 0), limit


def _memory_policy(escalate: int, deny: int) -> list[dict[str, Any]]:
    sel = f"{LABEL_PREFIX}/inference"
    on_inference = (
        "has(object.spec.nodeSelector) && "
        f"object.spec.nodeSelector.exists(k, k == '{sel}' && object.spec.nodeSelector[k] == "
        "'true')"
    )

    def within(q: str) -> str:
        return (
            "object.spec.containers.all(c, has(c.resources) && has(c.resources.requests) && "
            "'memory' in c.resources.requests && "
            f"quantity(c.resources.requests['memory']).compareTo(quantity('{q}')) <= 0)"
        )

    deny_policy = _policy(
        "forgeplanner-inference-memory",
        [_PODS],
        {
            "matchConditions": [{"name": "on-inference-node", "expression": on_inference}],
            "validations": [
                {
                    "expression": within(_mi(deny)),
                    "message": f"pods on inference nodes must request memory, at most the GPU "
                    f"budget {_mi(deny)}",
                    "reason": "Forbidden",
                }
            ],
        },
    )
    esc_policy = _policy(
        "forgeplanner-inference-memory-headroom",
        [_PODS],
        {
            "matchConditions": [{"name": "on-inference-node", "expression": on_inference}],
            "validations": [
                {
                    "expression": within(_mi(escalate)),
                    "message": f"memory request above {_mi(escalate)} leaves less than the "
                    "policy's headroom under the GPU budget: a human should sign this off",
                }
            ],
        },
    )
    return [
        deny_policy,
        _binding("forgeplanner-inference-memory", ["Deny"]),
        esc_policy,
        _binding("forgeplanner-inference-memory-headroom", ["Warn", "Audit"]),
    ]


def _registry_policy(registry_host: str) -> list[dict[str, Any]]:
    prefix = registry_host.rstrip("/") + "/"
    images = (
        f"object.spec.template.spec.containers.all(c, c.image.startsWith('{prefix}')) && "
        "(!has(object.spec.template.spec.initContainers) || "
        f"object.spec.template.spec.initContainers.all(c, c.image.startsWith('{prefix}')))"
    )
    return [
        _policy(
            "forgeplanner-registry",
            [_WORKLOADS],
            {
                "validations": [
                    {
                        "expression": images,
                        "message": f"prod images come from the lab's registry ({prefix}...)",
                        "reason": "Forbidden",
                    }
                ]
            },
        ),
        _binding(
            "forgeplanner-registry",
            ["Deny"],
            {"matchLabels": {f"{LABEL_PREFIX}/env": "prod"}},
        ),
    ]


def _labels_policy() -> list[dict[str, Any]]:
    checks = " && ".join(f"'{lab}' in object.metadata.labels" for lab in REQUIRED_LABELS)
    return [
        _policy(
            "forgeplanner-required-labels",
            [_WORKLOADS],
            {
                "validations": [
                    {
                        "expression": f"has(object.metadata.labels) && {checks}",
                        "message": "workloads carry " + " and ".join(REQUIRED_LABELS),
                    }
                ]
            },
        ),
        _binding(
            "forgeplanner-required-labels",
            ["Deny"],
            {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
        ),
    ]


def admission_objects(
    policy: Policy | None,
    layout: PlatformLayout | None,
    registry_host: str,
    expectations: Mapping[str, MacExpectation],
) -> list[dict[str, Any]]:
    """Every ValidatingAdmissionPolicy and binding for this shelf and gate policy."""
    out: list[dict[str, Any]] = []
    limits = memory_limits(policy, expectations)
    if limits is not None:
        out += _memory_policy(*limits)
    out += _registry_policy(registry_host)
    out += _labels_policy()
    return out
