"""Calibrated speed constants. GENERATED FILE - do not edit by hand.

Regenerate with:  .venv/bin/python scripts/calibrate_speed.py
Fitted 2026-11-26 on 129 published runs from /work/shared/reference
(bench_llamacpp_apple_calibration.csv, bench_other_calibration.csv); formulas in
forgeplanner/engine/speed.py, fit in forgeplanner/engine/speed_fit.py, mappings, excluded rows
and errors in docs/calibration.md.
"""

# Fit errors (mean absolute percentage error; held-out = cross-validated):
#   in-sample llama.cpp tg MAPE %: 4.03
#   in-sample llama.cpp pp MAPE %: 2.68
#   in-sample ollama tg MAPE %: 8.42
#   leave one chip generation out: llama.cpp tg MAPE %: 6.9
#   leave one chip generation out: llama.cpp pp MAPE %: 6.79
#   leave one chip generation out: ollama tg MAPE %: 12.68
#   leave one chip out: llama.cpp tg MAPE %: 6.88
#   leave one chip out: llama.cpp pp MAPE %: 5.47
#   leave one chip out: ollama tg MAPE %: 22.48
#   leave one model out: llama.cpp tg MAPE %: 7.22
#   leave one model out: llama.cpp pp MAPE %: 4.82
#   leave one model out: ollama tg MAPE %: 8.74

from forgeplanner.engine.speed import RuntimeConstants, SpeedConstants

FIT_DATE = "2026-11-26"

# Peak FP32 FLOP/s per GPU core by generation: median of published TFLOPS / cores
# (catalog chips with a published figure). Used where a bin has no published figure.
PER_CORE_FP32_FLOPS: dict[str, float] = {
    "M1": 325000000000.0,
    "M2": 357894736842.1053,
    "M3": 382500000000.0,
    "M4": 460000000000.0,
}

FIT_ERRORS: dict[str, float] = {
    "in-sample llama.cpp tg MAPE %": 4.03,
    "in-sample llama.cpp pp MAPE %": 2.68,
    "in-sample ollama tg MAPE %": 8.42,
    "leave one chip generation out: llama.cpp tg MAPE %": 6.9,
    "leave one chip generation out: llama.cpp pp MAPE %": 6.79,
    "leave one chip generation out: ollama tg MAPE %": 12.68,
    "leave one chip out: llama.cpp tg MAPE %": 6.88,
    "leave one chip out: llama.cpp pp MAPE %": 5.47,
    "leave one chip out: ollama tg MAPE %": 22.48,
    "leave one model out: llama.cpp tg MAPE %": 7.22,
    "leave one model out: llama.cpp pp MAPE %": 4.82,
    "leave one model out: ollama tg MAPE %": 8.74,
}

CONSTANTS = SpeedConstants(
    runtimes={
        "llama.cpp": RuntimeConstants(
            a_bw=0.8285981017514744,
            a_ultra=0.057935741410121595,
            a_core=8.040471944843357,
            dequant={
                "float": 0.0,
                "q8": 0.0,
                "legacy4": 0.4243863062088977,
                "kquant": 5.313382923470235,
                "mxfp4": 6.119832483486602,
            },
            tau_token_s=0.0,
            tau_layer_s=0.0001739003985854268,
            kv_read_factor=1.4,
            compute={
                "float": 1.2340836622743732,
                "q8": 1.442162361005102,
                "legacy4": 1.4648278586323915,
                "kquant": 1.604170665408427,
                "mxfp4": 1.4314219107536605,
            },
            c_ultra=0.06307896733310339,
            a_reread=1.6119882450913048,
        ),
        "ollama": RuntimeConstants(
            a_bw=0.8285981017514744,
            a_ultra=0.057935741410121595,
            a_core=8.040471944843357,
            dequant={
                "float": 0.0,
                "q8": 0.0,
                "legacy4": 0.4243863062088977,
                "kquant": 5.313382923470235,
                "mxfp4": 6.119832483486602,
            },
            tau_token_s=0.0,
            tau_layer_s=0.0001739003985854268,
            kv_read_factor=1.4,
            compute={
                "float": 1.2340836622743732,
                "q8": 1.442162361005102,
                "legacy4": 1.4648278586323915,
                "kquant": 1.604170665408427,
                "mxfp4": 1.4314219107536605,
            },
            c_ultra=0.06307896733310339,
            a_reread=1.6119882450913048,
        ),
        "mlx": RuntimeConstants(
            a_bw=0.8285981017514744,
            a_ultra=0.057935741410121595,
            a_core=8.040471944843357,
            dequant={
                "float": 0.0,
                "q8": 0.0,
                "legacy4": 0.4243863062088977,
                "kquant": 5.313382923470235,
                "mxfp4": 6.119832483486602,
                "mlx_affine": 0.4243863062088977,
            },
            tau_token_s=0.0,
            tau_layer_s=0.0001739003985854268,
            kv_read_factor=1.0,
            compute={
                "float": 1.2340836622743732,
                "q8": 1.442162361005102,
                "legacy4": 1.4648278586323915,
                "kquant": 1.604170665408427,
                "mxfp4": 1.4314219107536605,
                "mlx_affine": 1.4648278586323915,
            },
            c_ultra=0.06307896733310339,
            a_reread=1.6119882450913048,
        ),
    },
    fit_date=FIT_DATE,
    basis="fit on 129 published runs (reference bench_*_calibration.csv)",
    errors=FIT_ERRORS,
    per_core_fp32_flops=PER_CORE_FP32_FLOPS,
)
