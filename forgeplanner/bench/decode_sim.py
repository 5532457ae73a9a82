"""BLAS kernels of the built-in runner: `python -m forgeplanner.bench.decode_sim ARGS_JSON`.

Run by forgeplanner.bench.builtin in a child process whose BLAS thread count is set through
the environment (BLAS sizes its thread pool when it loads, so the parent cannot change it).

- "decode": prints "token <tok/s>" per token on stderr (progress) and
  {"tps": [...], "gbps": [...]} on stdout (after the warm-up tokens);
- "matmul": float32 GEMM, 2 n^3 FLOP per product; prints "gflops <x>" per product on stderr
  and {"gflops": [...]} on stdout.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import numpy as np

    a = json.loads(argv[0])
    if a.get("kernel") == "matmul":
        return _matmul(a)
    h, layers = int(a["hidden"]), int(a["layers"])
    rows = max(h, int(a["weight_bytes"]) // (4 * h * layers))
    weights = [np.full((rows, h), 1.0 / h, dtype=np.float32) for _ in range(layers)]
    real_bytes = rows * h * 4 * layers
    x = np.ones(h, dtype=np.float32)
    y = np.empty(rows, dtype=np.float32)
    tps, gbps = [], []
    for tok in range(int(a["warmup"]) + int(a["tokens"])):
        t0 = time.perf_counter()
        v = x
        for w in weights:
            np.matmul(w, v, out=y)
            v = y[:h]  # the next layer reads this layer's output
        elapsed = time.perf_counter() - t0
        print(f"token {1.0 / elapsed:.4f}", file=sys.stderr, flush=True)
        if tok >= int(a["warmup"]):
            tps.append(1.0 / elapsed)
            gbps.append(real_bytes / elapsed / 1e9)
    if not np.allclose(y[:: max(1, rows // 97)], 1.0, rtol=1e-3):
        print("decode simulation produced wrong values", file=sys.stderr)
        return 1
    json.dump({"tps": tps, "gbps": gbps, "bytes": real_bytes}, sys.stdout)
    return 0


def _matmul(a: dict) -> int:
    import numpy as np

    n = int(a["n"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n), dtype=np.float32)
    y = rng.standard_normal((n, n), dtype=np.float32)
    z = np.empty((n, n), dtype=np.float32)
    out = []
    for rep in range(int(a["warmup"]) + int(a["repetitions"])):
        t0 = time.perf_counter()
        np.matmul(x, y, out=z)
        gflops = 2.0 * n**3 / (time.perf_counter() - t0) / 1e9
        print(f"gflops {gflops:.4f}", file=sys.stderr, flush=True)
        if rep >= int(a["warmup"]):
            out.append(gflops)
    json.dump({"gflops": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
