"""llama-cpp-python benchmark, run as `python -m forgeplanner.bench.llamacpp_py SPEC_JSON`.

The fallback when llama-bench is not installed. It follows llama-bench's protocol
(tools/llama-bench/llama-bench.cpp: `test_prompt`, `test_gen`): per test one warm-up run, then
`repetitions` timed runs, each on a cleared KV cache pre-filled with `depth` tokens; the prompt
is exactly `n_prompt` random token ids evaluated in batches; generation evaluates exactly
`n_gen` single tokens. Tokens are fed, never sampled, so end-of-sequence cannot stop a run
(the effect of ignore_eos, without touching the sampler).

Progress goes to stderr in llama-bench's `--progress` format, the result to stdout in
llama-bench's `-o json` format, so `forgeplanner.bench.llamacpp` parses both the same way.
It runs in a child process so a native crash cannot take the app down.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any


def _log(i: int, n: int, what: str) -> None:
    print(f"llama-cpp-python: benchmark {i}/{n}: {what}", file=sys.stderr, flush=True)


def _gguf_attention(path: str) -> tuple[str, int, int]:
    """(architecture, K width, V width per head) from the GGUF's own metadata, as llama.cpp
    reads them (MLA runs absorbed: K = kv_lora_rank + rope dims, V = kv_lora_rank)."""
    from gguf import GGUFReader

    r = GGUFReader(path)

    def val(key: str):
        f = r.get_field(key)
        return None if f is None else f.contents()

    arch = str(val("general.architecture") or "")
    lora = val(f"{arch}.attention.kv_lora_rank")
    if lora:
        k = int(lora) + int(val(f"{arch}.rope.dimension_count") or 0)
        return arch, k, int(lora)
    heads = val(f"{arch}.attention.head_count")
    heads = heads[0] if isinstance(heads, list) else heads
    width = int(val(f"{arch}.embedding_length") or 0) // max(1, int(heads or 1))
    k = int(val(f"{arch}.attention.key_length") or width)
    v = int(val(f"{arch}.attention.value_length") or k)
    return arch, k, v


def flash_attn_for(spec: dict[str, Any]) -> bool:
    """llama-bench's default is `-fa auto` (tools/llama-bench/llama-bench.cpp); Llama() only
    takes on/off, so auto (flash_attn None) is resolved here with llama.cpp's own rule for this
    file and backend (forgeplanner.engine.runtime_defaults), the rule the estimate uses too."""
    if spec.get("flash_attn") is not None:
        return bool(spec["flash_attn"])
    from forgeplanner.engine.runtime_defaults import llamacpp_flash_attention

    arch, k, v = _gguf_attention(spec["model_path"])
    metal = sys.platform == "darwin" and spec.get("n_gpu_layers") != 0
    return llamacpp_flash_attention(arch, k, v, apple_gpu=metal).enabled


def main(argv: list[str]) -> int:
    import numpy as np
    from llama_cpp import Llama, llama_model_n_params, llama_model_size

    spec: dict[str, Any] = json.loads(argv[0])
    n_prompt = [p for p in spec["n_prompt"] if p]
    n_gen = [n for n in spec["n_gen"] if n]
    depths = spec["depth"] or [0]
    reps = int(spec["repetitions"])
    warmup = bool(spec.get("warmup", True))
    n_ctx = max(depths) + max(n_prompt + n_gen + [1]) + 8
    flash_attn = flash_attn_for(spec)
    llm = Llama(
        spec["model_path"],
        n_ctx=n_ctx,
        n_batch=2048,
        n_ubatch=512,
        n_threads=spec.get("threads") or None,
        n_threads_batch=spec.get("threads") or None,
        n_gpu_layers=spec["n_gpu_layers"] if spec.get("n_gpu_layers") is not None else -1,
        flash_attn=flash_attn,
        verbose=False,
    )
    rng = np.random.default_rng(0)
    n_vocab = llm.n_vocab()

    def tokens(n: int) -> list[int]:
        return [int(t) for t in rng.integers(0, n_vocab, size=n)]

    def prefill_depth(depth: int) -> None:
        llm.reset()  # n_tokens = 0; eval() drops the KV cache beyond it
        if depth:
            llm.eval(tokens(depth))

    tests = [("pp", p, 0, d) for d in depths for p in n_prompt]
    tests += [("tg", 0, n, d) for d in depths for n in n_gen]
    out = []
    for idx, (kind, p, n, d) in enumerate(tests, start=1):
        _log(idx, len(tests), "starting")
        if warmup:
            _log(idx, len(tests), f"warmup {'prompt' if kind == 'pp' else 'generation'} run")
            prefill_depth(d)
            llm.eval(tokens(p) if kind == "pp" else tokens(1))
        samples_ns = []
        for r in range(reps):
            _log(
                idx, len(tests), f"{'prompt' if kind == 'pp' else 'generation'} run {r + 1}/{reps}"
            )
            prefill_depth(d)
            if kind == "pp":
                toks = tokens(p)
                t0 = time.perf_counter_ns()
                llm.eval(toks)
            else:
                toks = tokens(n)
                t0 = time.perf_counter_ns()
                for t in toks:
                    llm.eval([t])
            samples_ns.append(time.perf_counter_ns() - t0)
        count = p if kind == "pp" else n
        samples_ts = [count * 1e9 / s for s in samples_ns]
        out.append(
            {
                "runner": "llama-cpp-python",
                "backends": "CPU" if not spec.get("n_gpu_layers") else "auto",
                "build_commit": "",
                "model_filename": spec["model_path"],
                "model_size": int(llama_model_size(llm.model)),
                "model_n_params": int(llama_model_n_params(llm.model)),
                "n_threads": spec.get("threads"),
                "flash_attn": int(flash_attn),  # as run (llama-bench prints -1 for auto)
                "n_prompt": p,
                "n_gen": n,
                "n_depth": d,
                "avg_ns": int(statistics.mean(samples_ns)),
                "stddev_ns": int(statistics.stdev(samples_ns)) if reps > 1 else 0,
                "avg_ts": statistics.mean(samples_ts),
                "stddev_ts": statistics.stdev(samples_ts) if reps > 1 else 0.0,
                "samples_ns": samples_ns,
                "samples_ts": samples_ts,
            }
        )
    llm.close()
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
