"""Generate examples/70b-home-lab.fplan through the CLI, so every number is the engine's.

    .venv/bin/python scripts/make_example_plan.py [--out examples/70b-home-lab.fplan]

The plan: run Llama 3.3 70B (Q4_K_M, llama.cpp, 16k context) at home on a Mac Studio M4 Max
128 GB, against alternatives: a used Mac Studio M2 Ultra 192 GB, a used M1 Ultra 128 GB, a
cluster of three Mac mini M4 Pro 64 GB over Thunderbolt 5, and the Studio with a K3s shelf of
three used 2018 Intel Mac minis (the learning track's whole lab). Every machine is bought used:
Apple stopped selling the 2025 Mac Studio and the 2024 Mac minis new in 2026 (the 128 GB M4 Max
was withdrawn on 2026-05-06), so the price engine gives their used price, with its basis.
Re-run it after the catalog, the engine or the price data change; review the diff.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "llama-3.3-70b"
QUANT = "Q4_K_M"
CONTEXT = "16384"

ALTERNATIVES = [
    (
        "Used Mac Studio M2 Ultra 192 GB",
        "More memory and bandwidth (800 GB/s) for less than a new M4 Max when bought used; "
        "room for a second model or a longer context.",
        [("mac-studio-m2-ultra-76c-192gb", 1, "used")],
        None,
    ),
    (
        "Used Mac Studio M1 Ultra 128 GB",
        "The cheapest 800 GB/s machine that holds a 70B model at Q4_K_M, bought used.",
        [("mac-studio-m1-ultra-64c-128gb", 1, "used")],
        None,
    ),
    (
        "Three Mac mini M4 Pro 64 GB over Thunderbolt 5",
        "No single mini holds the model with headroom; three split its layers over llama.cpp "
        "RPC. Adds capacity, not speed.",
        [("mac-mini-m4-pro-20c-64gb", 3, "used")],
        ["mac-mini-m4-pro-20c-64gbx3"],
    ),
    (
        "Mac Studio M4 Max 128 GB + K3s shelf of three used 2018 Mac minis",
        "The learning track's whole lab: the Studio serves the model (Ollama), three used Intel "
        "minis run K3s with the control plane, a dedicated telemetry node, Harbor and Argo CD.",
        [("mac-studio-m4-max-40c-128gb", 1, "used"), ("mac-mini-2018-i7-32gb", 3, "used")],
        None,
    ),
]
PLATFORM_NODES = {
    "studio": "mac-studio-m4-max-40c-128gb",
    "mini-1": "mac-mini-2018-i7-32gb",
    "mini-2": "mac-mini-2018-i7-32gb",
    "mini-3": "mac-mini-2018-i7-32gb",
}


def run(argv: list[str]) -> None:
    from forgeplanner.cli.main import main

    code = main(argv)
    if code != 0:
        raise SystemExit(f"forgeplanner {' '.join(argv)} exited {code}")


def build(out: Path) -> None:
    plan = str(out)
    quiet = ["--no-db", "--json"]
    run(
        [
            "plan",
            "new",
            "70B at home",
            "--out",
            plan,
            "--force",
            "--duty-hours",
            "4",
            "--tariff",
            "0.17",
            "--notes",
            "Run Llama 3.3 70B at home for daily use (learning track module 06, the 70B test "
            "case). Numbers are ForgePlanner estimates until benchmark runs are attached.",
            *quiet,
        ]
    )
    run(
        [
            "plan",
            "add-machine",
            plan,
            "mac-studio-m4-max-40c-128gb",
            "--role",
            "inference",
            "--condition",
            "used",
            *quiet,
        ]
    )
    run(["plan", "add-model", plan, MODEL, "--quant", QUANT, "--context", CONTEXT, *quiet])
    for name, rationale, machines, cluster in ALTERNATIVES:
        run(["plan", "add-alternative", plan, name, "--rationale", rationale, *quiet])
        for config_id, count, condition in machines:
            run(
                [
                    "plan",
                    "add-machine",
                    plan,
                    config_id,
                    "--count",
                    str(count),
                    "--condition",
                    condition,
                    "--alternative",
                    name,
                    *quiet,
                ]
            )
        run(
            [
                "plan",
                "add-model",
                plan,
                MODEL,
                "--quant",
                QUANT,
                "--context",
                CONTEXT,
                "--alternative",
                name,
                *quiet,
            ]
        )
        if cluster:
            nodes = [arg for node in cluster for arg in ("--node", node)]
            run(
                [
                    "plan",
                    "set-cluster",
                    plan,
                    "--model",
                    MODEL,
                    "--quant",
                    QUANT,
                    "--context",
                    CONTEXT,
                    "--link",
                    "tb5",
                    *nodes,
                    "--alternative",
                    name,
                    *quiet,
                ]
            )
    shelf = ALTERNATIVES[-1][0]
    nodes = [arg for n, cfg in PLATFORM_NODES.items() for arg in ("--node", f"{n}={cfg}")]
    run(
        [
            "plan",
            "set-platform",
            plan,
            *nodes,
            "--model",
            MODEL,
            "--quant",
            QUANT,
            "--context",
            CONTEXT,
            "--alternative",
            shelf,
            *quiet,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "70b-home-lab.fplan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        # A scratch home: the generator must not read or write the user's own database.
        os.environ["FORGEPLANNER_HOME"] = home
        sys.stdout = open(os.devnull, "w")  # the CLI's JSON echo is not needed here
        try:
            build(args.out.resolve())
        finally:
            sys.stdout.close()
            sys.stdout = sys.__stdout__
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
