"""NetworkPolicies in front of the inference Macs.

Ollama and mlx_lm.server have no authentication: anyone who can reach the port can run and
pull models. The generated instructions therefore bind each server to the Mac's address on the
shelf network (never 0.0.0.0, which also listens on Wi-Fi and any other interface), and these
policies keep the cluster's own pods away from it unless they are meant to call it: in every
namespace the platform creates, pods without the label `forgeplanner.io/inference-client:
"true"` may send traffic anywhere except to the inference Macs. Policies are allow-lists that
add up (kubernetes.io/docs/concepts/services-networking/network-policies), so a pod selected by
this one may reach exactly what its rules list; labelled pods are not selected and keep the
default (all egress). K3s enforces NetworkPolicy with its embedded kube-router controller
(docs.k3s.io/networking/networking-services: "Network Policy Controller").

What no policy can do: stop a device on the shelf network itself (outside the cluster) from
reaching the port. Keep that network private, or add the macOS firewall; the commands say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forgeplanner.engine.platform_layout import PlatformLayout

CLIENT_LABEL = "forgeplanner.io/inference-client"
PART_OF = "forgeplanner-platform"


def inference_addresses(layout: PlatformLayout, addresses: Mapping[str, str]) -> list[str]:
    inf = [s for s in layout.services if s.role == "inference" and s.id in layout.assignments]
    return sorted({addresses[layout.assignments[s.id]] for s in inf})


def inference_network_policies(
    layout: PlatformLayout, addresses: Mapping[str, str], namespaces: list[str]
) -> list[dict[str, Any]]:
    """One NetworkPolicy per namespace: only labelled pods may reach the inference Macs."""
    macs = inference_addresses(layout, addresses)
    if not macs:
        return []
    out = []
    for ns in namespaces:
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "restrict-inference-egress",
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/part-of": PART_OF},
                    "annotations": {
                        "forgeplanner.io/why": (
                            "Ollama/MLX on the Macs have no authentication: only pods "
                            f"labelled {CLIENT_LABEL}=true may reach them"
                        )
                    },
                },
                "spec": {
                    "podSelector": {
                        "matchExpressions": [{"key": CLIENT_LABEL, "operator": "DoesNotExist"}]
                    },
                    "policyTypes": ["Egress"],
                    "egress": [
                        # In-cluster traffic (pods, DNS): pod IPs are matched by selectors,
                        # not by ipBlock, which is meant for addresses outside the cluster.
                        {"to": [{"namespaceSelector": {}}]},
                        {
                            "to": [
                                {
                                    "ipBlock": {
                                        "cidr": "0.0.0.0/0",
                                        "except": [f"{a}/32" for a in macs],
                                    }
                                }
                            ]
                        },
                    ],
                },
            }
        )
    return out
