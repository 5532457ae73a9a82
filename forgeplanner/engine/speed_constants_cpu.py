"""llama.cpp CPU-backend decode constants. GENERATED FILE - do not edit by hand.

Regenerate with:  .venv/bin/python scripts/calibrate_cpu_backend.py fit
Fitted on 30 configurations (87 usable rows of scripts/calibration_data/cpu_runs.csv): real
llama-bench decode of random-weight GGUFs on ONE x86-64 host (Intel(R) Xeon(R) Processor (family
6 model 167, avx2/avx512f/avx512_vnni/amx_int8), 2 cores / 2 threads, 24 GiB, Linux x86_64),
llama-bench 0.5.0-dev (llama.cpp-0.3.36-139696c12d), measured 2026-11-26..2026-11-26. Constants
from one machine kind: other CPUs (e.g. Intel Mac minis) use them as the best available physics,
labelled so; `forgeplanner calibrate` on the user's own runs replaces them. Formula:
forgeplanner/engine/speed.py (CpuBackendConstants); fit and errors: docs/cpu-backend.md.
"""

from forgeplanner.engine.speed import CpuBackendConstants

CPU_BACKEND = CpuBackendConstants(
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
    },
)
