"""Benchmark runners that check the estimates on the user's own machines.

- `builtin`        numpy-only memory bandwidth (STREAM copy/triad), matmul, decode simulation
- `llamacpp`       llama-bench argv builder + JSON parser + runner; RPC clusters;
                   `llamacpp_py` the llama-cpp-python fallback (same protocol, same JSON)
- `ollama_runner`  Ollama /api/generate + /api/ps through the official client
- `mlx_runner`     mlx_lm.benchmark / mlx_lm.generate parsers and runner (macOS)
- `process`        the one subprocess wrapper (argv, timeout, terminate-then-kill, cancel)
- `progress`       Progress events, cancel tokens, the console bar driver
- `fingerprint`    machine fingerprint and tool versions stored with each run
- `estimate_link`  the engine's estimate made before a run, and the error per metric
- `session`        run + record in the user store (record_builtin, record_llamacpp, ...)
- `calibrate`      fit this machine's effective bandwidth, compute, per-token cost
- `likwid`         likwid-bench argv/parser for benchmarks/bench_copy_vs_likwid.py
- `synthetic_gguf` random-weight GGUF files of a model's shape; `llamacpp_tools` finds or
                   builds llama-bench / ggml-rpc-server
"""
