"""Manifests pass `kubernetes-validate --strict` (the real validator, CLI and Python API)."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from forgeplanner.platform.manifests import K8S_VERSION, all_objects
from forgeplanner.services.platform import (
    PlatformRequest,
    ShelfNode,
    build_platform,
    write_manifests,
)

SHELF = (
    ShelfNode("cp", "mac-mini-2018-i3-8gb"),
    ShelfNode("w1", "mac-mini-2018-i7-32gb"),
    ShelfNode("w2", "mac-mini-2018-i5-16gb"),
    ShelfNode("w3", "mac-mini-2018-i7-16gb"),
    ShelfNode("studio", "mac-studio-m2-ultra-76c-192gb"),
)


@pytest.fixture(scope="module")
def result():
    return build_platform(PlatformRequest(SHELF, "llama-3.1-70b", "Q4_K_M"))


def test_k8s_version_has_schemas():
    assert K8S_VERSION in [v[:4] for v in kubernetes_validate.utils.all_versions()]


def test_objects_validate_strictly_with_the_python_api(result):
    objs = all_objects(result.files)
    kinds = {o["kind"] for o in objs}
    assert {"Namespace", "Deployment", "StatefulSet", "Service", "EndpointSlice"} <= kinds
    for obj in objs:
        for version in (K8S_VERSION, kubernetes_validate.utils.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)


def test_written_files_pass_the_cli_strict(result, tmp_path):
    paths = write_manifests(result, tmp_path / "manifests")
    assert [p.name for p in paths] == sorted(result.files)
    proc = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION,
         *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout and "WARN" not in proc.stdout
    assert proc.stdout.count("passed") == len(all_objects(result.files))
    # nothing half-written: no temporaries left behind
    assert not [p for p in (tmp_path / "manifests").iterdir() if p.name.startswith(".")]


def test_strict_validation_catches_a_bad_field(result):
    # the validator is not a rubber stamp: an unknown field fails in strict mode
    obj = next(o for o in all_objects(result.files) if o["kind"] == "Deployment")
    bad = yaml.safe_load(yaml.safe_dump(obj))
    bad["spec"]["template"]["spec"]["nodeSelectr"] = {"x": "y"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_workloads_pin_nodes_tolerate_and_request(result):
    lay = result.layout
    objs = all_objects(result.files)
    tele_node = next(n for n in lay.nodes if "telemetry" in n.roles)
    for o in objs:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = o["spec"]["template"]["spec"]
        sid = o["metadata"]["name"]
        node = lay.node(lay.assignments[sid])
        # the node selector matches a label that only the assigned node carries
        ((key, value),) = spec["nodeSelector"].items()
        assert node.labels.get(key) == value
        others = [n for n in lay.nodes if n.name != node.name and n.labels.get(key) == value]
        assert others == []
        tol = spec.get("tolerations", [])
        if node is tele_node:
            assert tol and tol[0]["key"] == "forgeplanner.io/dedicated"
        else:
            assert tol == []
        svc = next(s for s in lay.services if s.id == sid)
        req = spec["containers"][0]["resources"].get("requests", {})
        if svc.memory_bytes is not None:
            assert req["memory"].endswith("Mi")
        if svc.cpu_millicores is not None:
            assert req["cpu"] == f"{svc.cpu_millicores}m"
    eps = next(o for o in objs if o["kind"] == "EndpointSlice")
    assert eps["endpoints"][0]["addresses"] == [result.addresses["studio"]]


def test_yaml_has_no_aliases(result):
    for text in result.yaml_files().values():
        assert "&id" not in text and "*id" not in text
