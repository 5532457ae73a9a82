"""Hand-made plans used as *inputs* by the plan, export, evidence and governance tests.

The numbers are plausible but typed here on purpose: these tests check document handling,
rendering, digests and policy logic, not the engine (tests/plan/test_cli.py and the example
generator run the real engine)."""

from __future__ import annotations

from dataclasses import replace

from forgeplanner.domain.plan import (
    AttachedRun,
    Build,
    LayoutSection,
    MemoryBreakdown,
    Plan,
    PlanEstimate,
    PlanMachine,
    PlanModel,
    PlanPrice,
    RunningCost,
    SpeedPoint,
)
from forgeplanner.domain.units import GiB
from forgeplanner.evidence.record import raw_digest
from forgeplanner.plan import edit

NOW = "2026-11-26T14:00:00Z"
RAW = '[{"model_type": "llama 70B Q4_K_M", "n_prompt": 512, "avg_ts": 11.8}]\n'


def studio(count: int = 1, usd: float | None = 3999.0) -> PlanMachine:
    price = (
        PlanPrice(
            usd=usd,
            basis="observed",
            as_of="2026-10-01",
            source="median of 3 listings",
            condition="used",
            observations=3,
        )
        if usd is not None
        else PlanPrice(usd=None, basis="unknown", reason="no observation")
    )
    return PlanMachine(
        config_id="mac-studio-m2-ultra-76c-192gb",
        count=count,
        label="Mac Studio (2023) - M2 Ultra",
        chip_id="m2-ultra-76c",
        memory_gb=192,
        price=price,
        idle_w=11.0,
        max_w=295.0,
        power_source="apple.com/mac-studio power",
    )


def estimate(
    target: str = "mac-studio-m2-ultra-76c-192gb",
    headroom_gib: float = 100.0,
    verdict: str = "fits",
    decode: float = 12.5,
) -> PlanEstimate:
    mem = MemoryBreakdown(40 * GiB, 3 * GiB, 1 * GiB, GiB // 2)
    limit = int(mem.total_bytes + headroom_gib * GiB)
    return PlanEstimate(
        model_id="llama-3.3-70b",
        quant="Q4_K_M",
        runtime="llama.cpp",
        context=8192,
        target=target,
        verdict=verdict,
        headroom_bytes=limit - mem.total_bytes,
        gpu_limit_bytes=limit,
        physical_bytes=192 * GiB,
        budget_basis="default wired limit",
        memory=mem,
        decode_tps=decode,
        prefill_tps=140.0,
        ttft_s=3.6,
        max_context_that_fits=131072,
        speed_basis="calibrated constants",
        speed_by_depth=(
            SpeedPoint(0, decode),
            SpeedPoint(4096, decode * 0.9),
            SpeedPoint(8192, decode * 0.8),
        ),
    )


def run(run_id: str = "7", decode: float = 11.8, raw: str = RAW) -> AttachedRun:
    return AttachedRun(
        run_id=run_id,
        runner="llama.cpp",
        started_at="2026-11-20T10:00:00+00:00",
        model_id="llama-3.3-70b",
        quant="Q4_K_M",
        fingerprint={"chip": "Apple M2 Ultra", "key": "abc"},
        tool_versions={"llama-bench": "b6700"},
        measured={"decode_tps": decode, "prefill_tps": 131.0},
        estimate={"decode_tps": 12.5, "prefill_tps": 140.0},
        raw_output=raw,
        raw_sha256=raw_digest(raw),
    )


def sample_plan(name: str = "70B at home", model_name: str = "Llama 3.3 70B") -> Plan:
    plan = edit.new_plan(name, NOW, notes="Run a 70B model at home.")
    model = PlanModel(
        "llama-3.3-70b",
        "Q4_K_M",
        "llama.cpp",
        8192,
        name=model_name,
        license="Llama 3.3 Community License",
        params_total=70_553_706_496,
    )
    build = Build(
        machines=(studio(),),
        models=(model,),
        estimates=(estimate(),),
        running_cost=RunningCost(
            idle_w=11.0,
            max_w=295.0,
            annual_kwh=470.0,
            annual_cost=80.0,
            currency="USD",
            basis="4 h/day at max, 20 h idle",
        ),
    )
    plan = replace(plan, build=build)
    mini = PlanMachine(
        config_id="mac-mini-m4-pro-20c-64gb",
        count=3,
        label="Mac mini (2024) - M4 Pro",
        chip_id="m4-pro-20c",
        memory_gb=64,
        price=PlanPrice(usd=2199.0, basis="launch", as_of="2024-11", source="apple.com"),
        idle_w=5.0,
        max_w=140.0,
    )
    cluster = LayoutSection(
        kind="cluster",
        inputs={"model_id": "llama-3.3-70b", "quant": "Q4_K_M", "link": "tb5", "mode": "pipeline"},
        result={
            "nodes": [
                {
                    "name": f"mini-{i}",
                    "config_id": mini.config_id,
                    "layers": [i * 27, i * 27 + 27],
                    "weights_bytes": 14 * GiB,
                    "kv_cache_bytes": GiB,
                    "total_bytes": 16 * GiB,
                    "gpu_limit_bytes": 48 * GiB,
                    "verdict": "fits",
                }
                for i in range(3)
            ],
            "decode_tps": 8.1,
            "prefill_tps": 90.0,
            "commands": [{"node": "mini-0", "command": "ggml-rpc-server -H 0.0.0.0 -p 50052"}],
        },
    )
    plan = edit.add_alternative(
        plan,
        "Three Mac mini M4 Pro 64 GB",
        "cheaper per GB",
        NOW,
        Build(
            machines=(mini,),
            models=(model,),
            estimates=(estimate(mini.config_id, -20, "does-not-fit", 0),),
            cluster=cluster,
        ),
    )
    return edit.attach_run(plan, run(), NOW)


def large_plan(n_models: int, name: str = "Large lab") -> Plan:
    """A plan of `n_models` models on one machine (one estimate each, every row told apart by
    its model id and its largest context), for the size limits of the exports."""
    base = sample_plan(name=name)
    models = tuple(
        PlanModel(f"model-{i:03d}", "Q4_K_M", "llama.cpp", 8192, name=f"Model {i:03d}")
        for i in range(1, n_models + 1)
    )
    estimates = tuple(
        replace(
            estimate(decode=5.0 + (i % 37)),
            model_id=m.model_id,
            max_context_that_fits=100_000 + i,
        )
        for i, m in enumerate(models, start=1)
    )
    return replace(base, build=replace(base.build, models=models, estimates=estimates))
