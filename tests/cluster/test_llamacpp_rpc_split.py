"""The planned split against real llama.cpp: two ggml-rpc-server processes on loopback, and
llama-bench with the plan's --rpc and -ts. llama.cpp's own load log must put exactly the planned
layers on each device and report the planned weight and KV bytes per device.

This machine has no GPU, so the llama-bench process has no local device: both nodes are RPC
servers, the second one (last in device order) gets the output head, and the token embedding
stays in the host process's CPU buffer. The plan's last node counts the embedding too (on a Mac
the host is that node), so the comparison takes it off there.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from forgeplanner.bench.process import free_port, stop_process, tcp_reachable
from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf
from forgeplanner.domain.estimates import GpuBudget, RunOptions
from forgeplanner.engine.cluster import LinkModel, NodeSpec, plan_pipeline
from forgeplanner.engine.cluster_commands import llamacpp_commands
from forgeplanner.engine.cluster_costs import layer_costs
from models_db.importers.gguf_file import import_gguf

MiB = 1 << 20
LOOPBACK = LinkModel("lo", "loopback", 1e10, "test", 1e-5, "test")
ASSIGNED = re.compile(r"layer\s+(\d+) assigned to device (\S+),")
BUFFER = re.compile(r"(RPC\d+\[[^\]]+\]) (model|KV) buffer size =\s+([\d.]+) MiB")


def budget(gib: float) -> GpuBudget:
    b = int(gib * (1 << 30))
    return GpuBudget(b, b, "test", 0, b)


@pytest.fixture
def rpc_servers(llamacpp_bin):
    procs, endpoints = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [str(llamacpp_bin / "ggml-rpc-server"), "-H", "127.0.0.1", "-p", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            endpoints.append(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for ep in endpoints:
            host, port = ep.split(":")
            while tcp_reachable(host, int(port), 0.5) is not None:
                assert time.monotonic() < deadline, f"ggml-rpc-server on {ep} did not start"
                time.sleep(0.1)
        yield endpoints
    finally:
        for p in procs:  # only the processes this fixture started, by handle
            stop_process(p)


@pytest.mark.slow
@pytest.mark.parametrize("budgets", [(1.0, 2.0), (3.0, 1.0)])
def test_real_llamacpp_places_the_planned_split(tmp_path, llamacpp_bin, rpc_servers, budgets):
    shape = SyntheticShape(n_layers=12, hidden_size=256, intermediate_size=768, n_heads=4,
                           n_kv_heads=2, vocab_size=2048, context_length=1024)  # fmt: skip
    path = write_synthetic_gguf(tmp_path / "tiny.gguf", shape, "Q8_0")
    model = import_gguf(path, "tiny")
    costs = layer_costs(model, "Q8_0", RunOptions(context=256))
    nodes = [NodeSpec("a", None, budget(budgets[0])), NodeSpec("b", None, budget(budgets[1]))]
    plan = plan_pipeline(costs, nodes, LOOPBACK, "proportional")
    addresses = {"a": "127.0.0.1", "b": "127.0.0.1"}
    bench = next(
        c for c in llamacpp_commands(plan, addresses, str(path)) if "llama-bench" in c.command
    )
    ts = re.search(r"-ts (\S+)", bench.command).group(1)
    assert ts == "/".join(map(str, plan.tensor_split))
    # Both nodes are RPC servers here (no local device), in plan order.
    argv = [str(llamacpp_bin / "llama-bench"), "-m", str(path),
            "--rpc", ",".join(rpc_servers), "-ts", ts, "-ngl", "999",
            "-p", "0", "-n", "2", "-r", "1", "-o", "json", "-v"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-2000:]

    devices: dict[str, list[int]] = {}
    for layer, dev in ASSIGNED.findall(log):
        devices.setdefault(dev, []).append(int(layer))
    got = [devices[d] for d in sorted(devices)]  # "RPC0", "RPC1": device order
    a, b = plan.nodes
    assert got[0] == list(range(*a.layers))
    assert got[1] == [*range(*b.layers), shape.n_layers]  # + the output layer

    sizes: dict[tuple[str, str], float] = {}
    for dev, kind, mib in BUFFER.findall(log):
        port = dev.split(":")[-1].rstrip("]")
        sizes[(port, kind)] = float(mib)
    pa = rpc_servers[0].split(":")[1]
    pb = rpc_servers[1].split(":")[1]
    # llama.cpp prints MiB with two decimals: compare within that rounding.
    assert sizes[(pa, "model")] == pytest.approx(a.weights_bytes / MiB, abs=0.006)
    assert sizes[(pb, "model")] == pytest.approx(
        (b.weights_bytes - costs.input_bytes) / MiB, abs=0.006
    )
    # KV: llama-bench runs with n_ctx = n_prompt + n_gen = 2 -> 256 cells (llama.cpp pads)
    kv_costs = layer_costs(model, "Q8_0", RunOptions(context=2))
    for port, node in ((pa, a), (pb, b)):
        want = sum(kv_costs.layer_kv_bytes[node.layers[0] : node.layers[1]])
        assert sizes[(port, "KV")] == pytest.approx(want / MiB, abs=0.006)
