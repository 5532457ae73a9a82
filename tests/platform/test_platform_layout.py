"""The pure K3s layout: roles, dedicated telemetry, inference placement, unplaceable reasons."""

from __future__ import annotations

import pytest

from forgeplanner.domain.units import GiB
from forgeplanner.engine.platform_layout import PlatformNode, plan_platform, shelf_power
from forgeplanner.engine.platform_services import GITOPS, REGISTRY, TELEMETRY


def intel(name: str, gib: int, cores: int = 6, w=(20.0, 122.0)) -> PlatformNode:
    return PlatformNode(name, "mac-mini-2018-i7-32gb", "Mac mini (2018)", False, cores,
                        gib * GiB, w[0], w[1], w[0] * 3.412, w[1] * 3.412)  # fmt: skip


def apple(name: str, gib: int, verdict: str | None, need: float = 43.4) -> PlatformNode:
    return PlatformNode(name, "mac-studio-m2-ultra-76c-192gb", "Mac Studio", True, 24,
                        gib * GiB, 10.0, 295.0, 34.0, 1006.0, verdict, int(need * GiB),
                        int(gib * 0.75 * GiB))  # fmt: skip


def test_every_service_gets_a_node_on_a_five_node_shelf():
    lay = plan_platform(
        [
            intel("cp", 8),
            intel("m1", 32),
            intel("m2", 16),
            intel("m3", 16),
            apple("st", 192, "fits"),
        ],
        "llama-3.1-70b",
        "Q4_K_M",
    )
    assert lay.unplaced == ()
    roles = {n.name: n.roles for n in lay.nodes}
    # the strongest Intel node (6 cores, most memory), dedicated (>= 3 K3s nodes)
    assert roles["m1"] == ("control-plane",)
    assert roles["st"] == ("inference",)
    tele = [n for n in lay.nodes if "telemetry" in n.roles]
    assert len(tele) == 1
    t = tele[0]
    # dedicated: the four telemetry services and nothing else
    assert sorted(t.services) == sorted(s.id for s in TELEMETRY)
    assert t.roles == ("telemetry",)
    assert {
        "key": "forgeplanner.io/dedicated",
        "value": "telemetry",
        "effect": "NoSchedule",
    } in t.taints
    for s in REGISTRY + GITOPS:
        assert lay.assignments[s.id] not in (t.name, "m1", "st")
    assert lay.assignments["ollama-st"] == "st"
    # the Studio is not a K3s node: inference runs natively on macOS
    assert lay.node("st").k3s is None
    assert lay.node("m1").k3s == "server"


def test_inference_only_on_apple_silicon_that_holds_the_model():
    lay = plan_platform(
        [intel("cp", 16), intel("m1", 16), apple("small", 32, "does-not-fit", need=43.4),
         apple("big", 192, "fits")],
        "llama-3.1-70b", "Q4_K_M",
    )  # fmt: skip
    assert lay.assignments.get("ollama-big") == "big"
    assert "ollama-small" not in lay.assignments
    # the Mac that cannot hold the model stays reserved for inference (smaller models)
    small = lay.node("small")
    assert small.k3s is None and small.roles == ("inference",) and not small.via_vm
    assert any("does not hold llama-3.1-70b Q4_K_M" in note for note in small.notes)


def test_unplaceable_inference_explains_the_numbers():
    lay = plan_platform(
        [intel("cp", 16), intel("m1", 16), apple("mini", 24, "does-not-fit", need=43.4)],
        "llama-3.1-70b", "Q4_K_M", "mlx",
    )  # fmt: skip
    (u,) = [u for u in lay.unplaced if u.service.startswith("inference")]
    assert u.service == "inference (mlx)"
    assert "mini needs 43.4 GiB, GPU limit 18.0 GiB" in u.reason


def test_one_node_cannot_have_a_dedicated_telemetry_node():
    lay = plan_platform([intel("solo", 32)])
    (u,) = lay.unplaced
    assert u.service == "telemetry"
    assert "needs an Intel K3s node of its own; only 1 K3s node(s) (solo)" in u.reason
    # the server takes the workloads when it is alone
    assert lay.node("solo").roles == ("control-plane", "worker", "registry", "gitops")
    assert lay.node("solo").taints == ()


def test_harbor_unplaceable_on_small_workers_says_why():
    lay = plan_platform([intel("cp", 4), intel("t", 4), intel("w", 4)])
    reasons = {u.service: u.reason for u in lay.unplaced}
    # cp + telemetry + one 4 GiB worker: Argo CD (2.0 GiB) fits, Harbor (4 GiB) cannot
    assert "harbor" in reasons
    assert reasons["harbor"].startswith("harbor needs 2000m CPU and 4.0 GiB; the roomiest worker")
    assert "GiB free after K3s" in reasons["harbor"]


def test_cpu_is_checked_too():
    lay = plan_platform(
        [intel("cp", 64, cores=2), intel("t", 64, cores=2), intel("w", 64, cores=2)]
    )
    reasons = {u.service: u.reason for u in lay.unplaced}
    assert "harbor" in reasons  # 2000m > 2 cores minus the K3s agent's 30m


def test_bad_node_names_and_duplicates():
    with pytest.raises(ValueError, match="not a valid Kubernetes node name"):
        plan_platform([intel("Mini_1", 8)])
    with pytest.raises(ValueError, match="used twice"):
        plan_platform([intel("a", 8), intel("a", 8)])


def test_shelf_power_sums_and_unknown_stays_unknown():
    p = shelf_power([intel("a", 8), intel("b", 8, w=(7.0, 65.0))])
    assert (p.idle_w, p.max_w) == (27.0, 187.0)
    unknown = PlatformNode("u", "x", "x", False, 2, GiB, None, 85.0, None, 290.0)
    p = shelf_power([intel("a", 8), unknown])
    assert p.idle_w is None and p.max_w == 207.0 and p.unknown == ("u",)


def test_every_request_cites_its_source():
    for s in TELEMETRY + REGISTRY + GITOPS:
        assert s.source
        if s.cpu_millicores is None or s.memory_bytes is None:
            assert "no request" in s.source or "no CPU request" in s.source
