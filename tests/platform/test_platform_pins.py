"""The five-node shelf on the real catalog: inference on the Studio, telemetry on its own Intel
mini, the control plane on the strongest mini; pinned roles honoured or refused with the reason."""

from __future__ import annotations

import pytest

from forgeplanner.cli.main import main
from forgeplanner.engine.platform_services import GITOPS, REGISTRY, TELEMETRY
from forgeplanner.platform.pins import PinError, cpu_clock_ghz, parse_node_arg
from forgeplanner.services.platform import PlatformError
from tests.platform.shelf import build

SHELF = [
    "cp=mac-mini-2018-i3-8gb",
    "mini-1=mac-mini-2018-i7-32gb",
    "mini-2=mac-mini-2018-i5-16gb",
    "mini-3=mac-mini-2018-i7-16gb",
    "studio=mac-studio-m2-ultra-76c-192gb",
]


def _roles(result) -> dict[str, tuple[str, ...]]:
    return {n.name: n.roles for n in result.layout.nodes}


@pytest.mark.parametrize("model", [None, ("llama-3.1-70b", "Q4_K_M")])
def test_five_node_shelf_follows_the_track(model):
    mid, quant = model or (None, None)
    r = build(SHELF, mid, quant)
    lay = r.layout
    assert lay.unplaced == ()
    roles = _roles(r)
    # inference on the Studio, with or without a model; the Studio is not a K3s node
    assert roles["studio"] == ("inference",)
    assert lay.node("studio").k3s is None
    assert lay.assignments["ollama-studio"] == "studio"
    # telemetry on a dedicated Intel mini: the four telemetry services and nothing else
    (tele,) = [n for n in lay.nodes if "telemetry" in n.roles]
    assert tele.name.startswith("mini-") and tele.roles == ("telemetry",)
    assert sorted(tele.services) == sorted(s.id for s in TELEMETRY)
    # the control plane on the strongest small node: the 6-core i7 with 32 GB, not the i3/i5
    assert roles["mini-1"] == ("control-plane",)
    for s in REGISTRY + GITOPS:
        assert lay.assignments[s.id] not in ("studio", tele.name, "mini-1")


def test_pins_are_honoured():
    pinned = [
        "cp=mac-mini-2018-i3-8gb:telemetry",
        "mini-1=mac-mini-2018-i7-32gb:registry+gitops",
        "mini-2=mac-mini-2018-i5-16gb:control-plane",
        "mini-3=mac-mini-2018-i7-16gb:worker",
        "studio=mac-studio-m2-ultra-76c-192gb:inference",
    ]
    r = build(pinned)
    lay = r.layout
    roles = _roles(r)
    assert roles["cp"] == ("telemetry",)
    assert roles["mini-2"] == ("control-plane",)
    assert lay.node("mini-2").k3s == "server"
    assert roles["mini-1"] == ("worker", "registry", "gitops")
    assert all(lay.assignments[s.id] == "mini-1" for s in REGISTRY + GITOPS)
    assert all(lay.assignments[s.id] == "cp" for s in TELEMETRY)
    assert roles["studio"] == ("inference",)
    assert "pinned: registry+gitops" in lay.node("mini-1").notes


def test_a_mac_pinned_to_a_k3s_role_joins_through_a_vm():
    r = build(
        ["a=mac-mini-2018-i7-32gb", "b=mac-mini-2018-i5-16gb",
         "studio=mac-studio-m2-ultra-76c-192gb:worker"]
    )  # fmt: skip
    st = r.layout.node("studio")
    assert st.k3s == "agent" and st.via_vm and "inference" not in st.roles
    assert any("Linux VM" in note for note in r.layout.notes)


@pytest.mark.parametrize(
    ("nodes", "model", "message"),
    [
        (["a=mac-mini-2018-i7-32gb:inference"], None,
         "node a: cannot pin inference: Mac mini (2018) is not Apple Silicon"),
        (["s=mac-studio-m1-max-24c-32gb:inference", "a=mac-mini-2018-i7-32gb"],
         ("llama-3.1-70b", "Q8_0"), "node s: cannot pin inference of llama-3.1-70b Q8_0: it needs"),
        (["s=mac-studio-m2-ultra-76c-192gb:inference+worker"], None,
         "inference runs natively on macOS, outside K3s; it cannot also take worker"),
        (["a=mac-mini-2018-i7-32gb:telemetry+registry"], None,
         "node a: telemetry is a dedicated node; it cannot also take registry"),
        (["a=mac-mini-2018-i7-32gb:control-plane", "b=mac-mini-2018-i7-32gb:control-plane"], None,
         "role control-plane is pinned to a, b: this layout runs one K3s server"),
        (["a=mac-mini-2018-i7-32gb", "b=mac-mini-2012-i5-4gb:registry",
          "c=mac-mini-2018-i3-8gb", "d=mac-mini-2018-i3-8gb"], None,
         "node b: cannot pin harbor: it needs 2000m CPU and 4.0 GiB; b has"),
        (["a=mac-mini-2018-i7-32gb:worker", "b=mac-mini-2018-i5-16gb:telemetry"], None,
         "no node is left for the K3s control plane"),
    ],
)  # fmt: skip
def test_unplaceable_pins_are_refused_with_the_reason(nodes, model, message):
    mid, quant = model or (None, None)
    with pytest.raises(PlatformError) as exc:
        build(nodes, mid, quant)
    assert message in str(exc.value)


def test_pin_text_is_checked(capsys):
    assert parse_node_arg("a=mac-mini-2018-i7-32gb:control-plane+registry") == (
        "a", "mac-mini-2018-i7-32gb", ("control-plane", "registry"))  # fmt: skip
    assert parse_node_arg("a=mac-mini-2018-i7-32gb") == ("a", "mac-mini-2018-i7-32gb", ())
    with pytest.raises(PinError, match="role 'gpu' unknown; valid: control-plane, worker"):
        parse_node_arg("a=mac-mini-2018-i7-32gb:gpu")
    assert main(["platform", "layout", "--node", "a=mac-mini-2018-i7-32gb:boss"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "role 'boss' unknown" in err
    assert cpu_clock_ghz("Intel Core i7 3.2GHz 6-core") == 3.2
    assert cpu_clock_ghz("M2 Ultra") is None
