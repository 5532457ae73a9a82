"""llama.cpp CPU-backend decode constants. GENERATED FILE - do not edit by hand.

Regenerate with:  .venv/bin/python scripts/calibrate_cpu_backend.py fit
Fitted per CPU kind on forgeplanner/calibration/data/cpu_runs.csv: real llama-bench decode of
random-weight GGUFs. AVX2 (no AVX-512): 30 configurations (90 usable rows) on ONE host (AMD EPYC
(family 25 model 1, avx2), 2 cores / 2 threads, 24 GiB, Linux x86_64), llama-bench 0.5.0-dev
(llama.cpp-0.3.36-b153db3c71), measured 2026-12-07..2026-12-07. AVX-512: 30 configurations (87
usable rows) on ONE host (Intel(R) Xeon(R) Processor (family 6 model 167,
avx2/avx512f/avx512_vnni/amx_int8), 2 cores / 2 threads, 24 GiB, Linux x86_64), llama-bench
0.5.0-dev (llama.cpp-0.3.36-139696c12d), measured 2026-11-26..2026-11-26. A host uses the
constants of its own kind; a CPU of a kind without runs (the 2012 Intel Mac minis' AVX) or of
unknown kind uses the AVX2 ones, labelled so; `forgeplanner calibrate` on the user's own runs
replaces them. Formula: forgeplanner/engine/speed.py (CpuBackendConstants); fit and errors:
docs/cpu-backend.md.
"""

from forgeplanner.engine.speed import CpuBackendConstants

CPU_BACKENDS: dict[str, CpuBackendConstants] = {
    "avx2": CpuBackendConstants(
        kind="avx2",
        a_bw=0.5592115727126774,
        dequant={"float": 8.535797902008223, "q8": 5.756855448520441, "legacy4": 5.56793235461042},
        tau_layer_s=2.619283916574369e-05,
        tau_sync_s=3.6004690513642945e-05,
        measured_on="AMD EPYC (family 25 model 1, AVX2), 2 cores",
        fit_date="2026-12-07",
        tool="llama-bench 0.5.0-dev (llama.cpp-0.3.36-b153db3c71)",
        errors={
            "in-sample decode MAPE %": 6.7,
            "leave one shape out: decode MAPE %": 10.11,
            "leave one shape out: decode max abs %": 23.62,
            "held-out qwen2.5-0.5b F16 1t: decode error %": -6.16,
            "held-out qwen2.5-0.5b F16 2t: decode error %": -2.47,
            "held-out qwen2.5-0.5b Q8_0 1t: decode error %": 4.69,
            "held-out qwen2.5-0.5b Q8_0 2t: decode error %": 8.5,
            "on the avx512 host's runs (another CPU kind): decode MAPE %": 71.12,
        },
    ),
    "avx512": CpuBackendConstants(
        kind="avx512",
        a_bw=1.3563111847575684,
        dequant={"float": 0.0, "q8": 7.865854513144096, "legacy4": 9.78924928497938},
        tau_layer_s=0.0,
        tau_sync_s=0.0,
        measured_on="Intel(R) Xeon(R) Processor (family 6 model 167, AVX-512/AMX), 2 cores",
        fit_date="2026-11-26",
        tool="llama-bench 0.5.0-dev (llama.cpp-0.3.36-139696c12d)",
        errors={
            "in-sample decode MAPE %": 9.68,
            "leave one shape out: decode MAPE %": 11.46,
            "leave one shape out: decode max abs %": 38.58,
            "held-out qwen2.5-0.5b F16 1t: decode error %": 11.18,
            "held-out qwen2.5-0.5b F16 2t: decode error %": 13.98,
            "held-out qwen2.5-0.5b Q8_0 1t: decode error %": -7.62,
            "held-out qwen2.5-0.5b Q8_0 2t: decode error %": 6.9,
            "on the avx2 host's runs (another CPU kind): decode MAPE %": 32.09,
        },
    ),
}
