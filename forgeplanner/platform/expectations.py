"""What the plan expects of each inference Mac, for the alert rules and dashboards: the GPU
wired limit (engine.budget) and, with a model, the estimated decode/prefill tokens/s
(engine.estimate). Glue between the catalog, the model database and the engine."""

from __future__ import annotations

from forgeplanner.engine.platform_layout import PlatformLayout
from forgeplanner.platform.observability import MacExpectation


def mac_expectations(layout: PlatformLayout, context: int = 8192) -> dict[str, MacExpectation]:
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.budget import gpu_budget
    from forgeplanner.engine.estimate import estimate
    from forgeplanner.host import host_from_config

    model = None
    if layout.model_id is not None:
        from forgeplanner.cli.model_lookup import find_model

        model = find_model(layout.model_id)
    serving = {layout.assignments[s.id] for s in layout.services if s.role == "inference"
               and s.id in layout.assignments}  # fmt: skip
    out: dict[str, MacExpectation] = {}
    for n in layout.nodes:
        if "inference" not in n.roles:
            continue
        host = host_from_config(n.config_id)
        limit = gpu_budget(host).gpu_limit_bytes
        decode = prefill = None
        if model is not None and n.name in serving:
            try:
                est = estimate(
                    model, layout.quant, host, RunOptions(context=context, runtime=layout.runtime)
                )
            except ValueError:
                est = None  # e.g. a GGUF quantization asked of MLX: no estimate, no rule
            if est is not None and est.speed is not None:
                decode, prefill = est.speed.decode_tps, est.speed.prefill_tps
        out[n.name] = MacExpectation(n.name, limit, decode, prefill)
    return out
