"""The gate's policy rendered as ValidatingAdmissionPolicy objects (validated strictly)."""

from __future__ import annotations

import kubernetes_validate

from forgeplanner.governance.policy import parse_policy
from forgeplanner.platform.admission import admission_objects, memory_limits
from forgeplanner.platform.manifests import K8S_VERSION
from forgeplanner.services.platform import mac_expectations
from tests.platform.shelf import build

POLICY = b"""
[memory]
min_headroom_gib = 8
"""


def test_policy_objects_follow_the_gate_and_validate():
    r = build(["a=mac-mini-2018-i7-32gb", "studio=mac-studio-m2-max-30c-64gb"])
    exp = mac_expectations(r.layout)
    limit = exp["studio"].gpu_limit_bytes
    policy = parse_policy(POLICY, "policy.toml")
    assert memory_limits(policy, exp) == (limit - 8 * 2**30, limit)
    objs = admission_objects(policy, r.layout, "harbor.lab.internal", exp)
    by_name = {o["metadata"]["name"]: o for o in objs}
    deny = by_name["forgeplanner-inference-memory"]["spec"]["validations"][0]["expression"]
    assert f"quantity('{limit // 2**20}Mi')" in deny
    esc = by_name["forgeplanner-inference-memory-headroom"]["spec"]["validations"][0]
    assert f"quantity('{(limit - 8 * 2**30) // 2**20}Mi')" in esc["expression"]
    # DENY -> Deny; ESCALATE -> Warn + Audit (admitted, visible, audited)
    assert by_name["forgeplanner-inference-memory-deny"]["spec"]["validationActions"] == ["Deny"]
    assert by_name["forgeplanner-inference-memory-headroom-warn-audit"]["spec"][
        "validationActions"
    ] == ["Warn", "Audit"]
    reg = by_name["forgeplanner-registry"]["spec"]["validations"][0]["expression"]
    assert "startsWith('harbor.lab.internal/')" in reg
    binding = by_name["forgeplanner-registry-deny"]["spec"]
    assert binding["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "forgeplanner.io/env": "prod"
    }
    assert "forgeplanner-required-labels" in by_name
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_without_an_inference_mac_there_is_no_memory_policy():
    r = build(["a=mac-mini-2018-i7-32gb"])
    objs = admission_objects(None, r.layout, "harbor.lab.internal", mac_expectations(r.layout))
    assert not [o for o in objs if "memory" in o["metadata"]["name"]]
    assert [o for o in objs if o["metadata"]["name"] == "forgeplanner-registry"]
