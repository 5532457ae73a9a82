"""`forgeplanner plan ...` end to end with the real catalog, model database, engine and store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from forgeplanner.domain.runtime import Runtime
from forgeplanner.evidence.record import raw_digest
from forgeplanner.plan.files import read_plan
from forgeplanner.services.cluster import ClusterRequest, NodeGroup, build_cluster

STUDIO = "mac-studio-m2-ultra-76c-192gb"
MINI = "mac-mini-m4-pro-20c-64gb"
MODEL = "llama-3.3-70b"
FIXTURES = Path(__file__).parent / "fixtures"


def run_json(capsys, argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def plan_file(tmp_path: Path, capsys) -> Path:
    path = tmp_path / "lab.fplan"
    run_json(capsys, ["plan", "new", "Lab", "--out", str(path)])
    run_json(capsys, ["plan", "add-machine", str(path), STUDIO])
    run_json(
        capsys, ["plan", "add-model", str(path), MODEL, "--quant", "Q4_K_M", "--context", "16384"]
    )
    return path


def test_estimates_are_the_engines(plan_file: Path, capsys) -> None:
    (est,) = read_plan(plan_file).build.estimates
    ref = run_json(
        capsys,
        [
            "estimate",
            "--model",
            MODEL,
            "--machine",
            STUDIO,
            "--quant",
            "Q4_K_M",
            "--context",
            "16384",
        ],
    )
    assert est.target == STUDIO and est.verdict == ref["verdict"]
    assert est.memory.total_bytes == ref["memory"]["total_bytes"]
    assert est.memory.weights_bytes == ref["memory"]["weights_bytes"]
    assert est.headroom_bytes == ref["headroom_bytes"]
    assert est.gpu_limit_bytes == ref["budget"]["gpu_limit_bytes"]
    assert est.decode_tps == pytest.approx(ref["decode_tps"], abs=1e-3)
    assert est.prefill_tps == pytest.approx(ref["prefill_tps"], abs=1e-3)
    assert est.max_context_that_fits == ref["max_context_that_fits"]
    # The speed-vs-context curve starts at the estimate's own depth-0 speed and falls.
    curve = [p.decode_tps for p in est.speed_by_depth]
    assert curve[0] == pytest.approx(ref["decode_tps"], rel=1e-3)
    assert curve == sorted(curve, reverse=True) and len(curve) >= 8


def test_each_edit_recomputes(plan_file: Path, capsys) -> None:
    before = read_plan(plan_file).build.estimates[0]
    run_json(
        capsys,
        ["plan", "add-model", str(plan_file), MODEL, "--quant", "Q8_0", "--context", "16384"],
    )
    after = read_plan(plan_file).build.estimates[0]
    assert after.quant == "Q8_0" and after.memory.weights_bytes > before.memory.weights_bytes
    out = run_json(capsys, ["plan", "add-machine", str(plan_file), MINI, "--count", "2"])
    plan = read_plan(plan_file)
    assert [e.target for e in plan.build.estimates] == [STUDIO, MINI]
    assert out["totals"]["machines"] == 3
    machine = plan.build.machines[1]
    # Apple stopped selling the M4 Pro Mac mini on 2026-08-25: not priced new after that day
    assert machine.price.basis == "unknown" and machine.price.usd is None
    assert "not sold new by Apple" in machine.price.reason
    run_json(capsys, ["plan", "remove-machine", str(plan_file), MINI])
    assert [m.config_id for m in read_plan(plan_file).build.machines] == [STUDIO]


def test_user_price_and_alternative_with_cluster(plan_file: Path, capsys) -> None:
    run_json(
        capsys,
        [
            "plan",
            "add-machine",
            str(plan_file),
            STUDIO,
            "--price-usd",
            "3900",
            "--price-date",
            "2026-11-01",
            "--condition",
            "used",
        ],
    )
    studio = read_plan(plan_file).build.machines[0]
    assert (studio.count, studio.price.usd, studio.price.basis, studio.price.as_of) == (
        2,
        3900.0,
        "user",
        "2026-11-01",
    )
    run_json(capsys, ["plan", "add-alternative", str(plan_file), "minis", "--rationale", "x"])
    run_json(
        capsys,
        ["plan", "add-machine", str(plan_file), MINI, "--count", "3", "--alternative", "minis"],
    )
    run_json(
        capsys,
        ["plan", "add-model", str(plan_file), MODEL, "--quant", "Q4_K_M", "--alternative", "minis"],
    )
    run_json(
        capsys,
        [
            "plan",
            "set-cluster",
            str(plan_file),
            "--model",
            MODEL,
            "--quant",
            "Q4_K_M",
            "--node",
            f"{MINI}x3",
            "--link",
            "tb5",
            "--alternative",
            "minis",
        ],
    )
    cluster_ref = run_json(
        capsys,
        ["cluster", "--model", MODEL, "--quant", "Q4_K_M", "--node", f"{MINI}x3", "--link", "tb5"],
    )
    alt = read_plan(plan_file).alternative("minis").build
    assert alt.cluster is not None
    assert [n["layers"] for n in alt.cluster.result["nodes"]] == [
        n["layers"] for n in cluster_ref["nodes"]
    ]
    assert alt.cluster.result["decode_tps"] == pytest.approx(cluster_ref["decode_tps"])
    assert read_plan(plan_file).build.cluster is None  # the main build is untouched


def test_bad_input_is_one_clear_error(plan_file: Path, capsys) -> None:
    assert main(["plan", "add-machine", str(plan_file), "mac-studio-m9"]) == 2
    assert "unknown configuration 'mac-studio-m9'" in capsys.readouterr().err
    assert main(["plan", "add-model", str(plan_file), MODEL, "--quant", "Q9_Z"]) == 2
    assert "Q9_Z" in capsys.readouterr().err
    assert main(["plan", "add-model", str(plan_file), "no-such-model", "--quant", "Q4_K_M"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["plan", "add-machine", str(plan_file), STUDIO, "--alternative", "nope"]) == 2
    assert "alternative 'nope'" in capsys.readouterr().err
    assert main(["plan", "new", "Lab", "--out", str(plan_file)]) == 2
    assert "exists" in capsys.readouterr().err
    assert len(read_plan(plan_file).build.machines) == 1  # nothing half-written


def test_saved_in_the_database(plan_file: Path, tmp_path: Path, capsys) -> None:
    listed = run_json(capsys, ["plan", "list"])
    (entry,) = listed["plans"]
    assert entry["name"] == "Lab" and entry["versions"] == 3
    out = tmp_path / "from-db.fplan"
    run_json(capsys, ["plan", "load", "Lab", "--out", str(out)])
    assert read_plan(out) == read_plan(plan_file)
    run_json(capsys, ["plan", "load", "Lab", "--version", "1", "--out", str(out)])
    assert read_plan(out).build.machines == ()


def test_attach_run_from_the_store_and_verify_the_evidence(plan_file, tmp_path, capsys) -> None:
    from forgeplanner.store import BenchRunRepo, open_store

    raw = json.dumps([{"n_gen": 128, "avg_ts": 10.9}]) + "\n"
    store = open_store()
    with store.session() as s:
        repo = BenchRunRepo(s)
        run_id = repo.start(
            runner="llama.cpp",
            fingerprint={"chip": "Apple M2 Ultra", "key": "k1"},
            tool_versions={"llama-bench": "b7000"},
            params={"model_id": MODEL, "quant": "Q4_K_M"},
            estimate={"decode_tps": 11.6, "prefill_tps": 115.0},
        )
        repo.finish(
            run_id, status="ok", measured={"decode_tps": 10.9, "prefill_tps": 120.0}, raw_output=raw
        )
        unfinished = repo.start(
            runner="llama.cpp", fingerprint={"key": "k1"}, tool_versions={}, params={}
        )
    store.close()
    assert main(["plan", "attach-run", str(plan_file), str(unfinished)]) == 2
    assert "status 'running'" in capsys.readouterr().err
    run_json(capsys, ["plan", "attach-run", str(plan_file), str(run_id), "--config", STUDIO])
    (run,) = read_plan(plan_file).runs
    assert run.raw_output == raw and run.raw_sha256 == raw_digest(raw)
    assert run.measured == {"decode_tps": 10.9, "prefill_tps": 120.0}
    assert run.tool_versions == {"llama-bench": "b7000"} and run.config_id == STUDIO
    record = tmp_path / "evidence.json"
    out = run_json(capsys, ["export", str(plan_file), "--format", "json", "--out", str(record)])
    assert main(["evidence", "verify", str(record)]) == 0
    data = json.loads(record.read_text())
    from forgeplanner.evidence.record import verify_record
    from forgeplanner.store import EvidenceRepo

    store = open_store()
    with store.session() as s:
        kept = EvidenceRepo(s).get(out["evidence_id"])
    store.close()
    assert kept.kind == "plan" and kept.run_ids == (run_id,) and kept.plan_id is not None
    assert kept.body == data and verify_record(kept.body).ok
    assert data["runs"][0]["raw_output"] == raw
    assert data["digests"]["sections"][f"runs[{run_id}].raw_output"] == raw_digest(raw)


def test_migrate_v1_on_the_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "v2.fplan"
    run_json(capsys, ["plan", "migrate", str(FIXTURES / "v1_plan.fplan"), "--out", str(out)])
    assert json.loads(out.read_text())["schema_version"] == 2
    shown = run_json(capsys, ["plan", "show", str(out)])
    assert shown["name"] == "Studio for 70B (schema 1)"
    # recompute brings the estimates of the migrated plan
    run_json(capsys, ["plan", "recompute", str(out), "--no-db"])
    targets = {(e.model_id, e.target) for e in read_plan(out).build.estimates}
    assert (MODEL, STUDIO) in targets and ("qwen3-8b", "mac-mini-2018-i7-32gb") in targets


def test_used_price_is_the_price_engines_including_your_observations(tmp_path, capsys) -> None:
    from datetime import date, timedelta

    from forgeplanner.store import PriceRepo, open_store

    store = open_store()
    with store.session() as s:
        PriceRepo(s).add(
            config_id=STUDIO,
            price=4100.0,
            currency="USD",
            observed_on=date.today() - timedelta(days=10),
            condition="used",
            source="my local listing",
        )
    store.close()
    path = tmp_path / "used.fplan"
    run_json(capsys, ["plan", "new", "Used", "--out", str(path), "--no-db"])
    run_json(capsys, ["plan", "add-machine", str(path), STUDIO, "--condition", "used", "--no-db"])
    price = read_plan(path).build.machines[0].price
    shown = run_json(capsys, ["prices", "show", STUDIO])
    assert price.basis == "observed" == shown["used"]["basis"]
    assert price.usd == pytest.approx(shown["used"]["price_usd"])
    assert price.observations == shown["used"]["count"] >= 1
    assert price.as_of == shown["used"]["date_to"] and "my local listing" in price.source


@pytest.mark.parametrize(
    ("runtime", "quant"), [(Runtime.LLAMA_CPP, "Q4_K_M"), (Runtime.MLX, "MLX-4bit")]
)
def test_a_cluster_plan_is_the_cluster_service_for_its_runtime(
    plan_file: Path, capsys, runtime: Runtime, quant: str
) -> None:
    """The plan's cluster figures are what services.cluster.build_cluster gives for the runtime
    the plan stores (per-node memory, split and speed), and a runtime's figures are its own."""
    argv = ["plan", "set-cluster", str(plan_file), "--model", MODEL, "--node", f"{MINI}x2"]
    run_json(capsys, [*argv, "--quant", quant, "--runtime", str(runtime)])
    section = read_plan(plan_file).build.cluster
    assert section.inputs["runtime"] == runtime
    nodes = (NodeGroup(MINI, 2),)
    direct = build_cluster(ClusterRequest(MODEL, quant, nodes, runtime=runtime)).to_dict()
    keys = ("layers", "weights_bytes", "kv_cache_bytes", "compute_bytes", "runtime_bytes",
            "total_bytes", "gpu_limit_bytes", "verdict")  # fmt: skip
    assert [{k: n[k] for k in keys} for n in section.result["nodes"]] == [
        {k: n[k] for k in keys} for n in json.loads(json.dumps(direct["nodes"]))
    ]
    assert section.result["decode_tps"] == pytest.approx(direct["decode_tps"])
    assert section.result["prefill_tps"] == pytest.approx(direct["prefill_tps"])
    other = Runtime.MLX if runtime is Runtime.LLAMA_CPP else Runtime.LLAMA_CPP
    other_quant = "MLX-4bit" if other is Runtime.MLX else "Q4_K_M"
    theirs = build_cluster(ClusterRequest(MODEL, other_quant, nodes, runtime=other)).plan
    assert section.result["decode_tps"] != pytest.approx(theirs.decode_tps)
    assert [n["runtime_bytes"] for n in section.result["nodes"]] != [
        n.runtime_bytes for n in theirs.nodes
    ]


def test_a_cluster_plan_uses_the_runtime_it_stores(plan_file: Path, capsys) -> None:
    """`plan set-cluster --runtime mlx` used to store mlx and compute llama.cpp's numbers."""
    base = ["plan", "set-cluster", str(plan_file), "--model", MODEL, "--node", f"{MINI}x2"]
    run_json(capsys, [*base, "--quant", "MLX-4bit", "--runtime", "mlx"])
    section = read_plan(plan_file).build.cluster
    assert section.inputs["runtime"] == "mlx"
    argv = ["cluster", "--model", MODEL, "--quant", "MLX-4bit", "--node", f"{MINI}x2"]
    mlx = run_json(capsys, [*argv, "--runtime", "mlx"])
    assert section.result["decode_tps"] == pytest.approx(mlx["decode_tps"])
    assert [n["total_bytes"] for n in section.result["nodes"]] == [
        n["total_bytes"] for n in mlx["nodes"]
    ]
    gguf = run_json(capsys, ["cluster", "--model", MODEL, "--quant", "Q4_K_M", "--node",
                             f"{MINI}x2"])  # fmt: skip
    assert mlx["decode_tps"] != pytest.approx(gguf["decode_tps"])
    # A GGUF quantization is not an MLX one: one clear line, the plan left as it was.
    assert main([*base, "--quant", "Q4_K_M", "--runtime", "mlx"]) == 2
    assert "runtime mlx loads MLX weights" in capsys.readouterr().err
    assert read_plan(plan_file).build.cluster == section
