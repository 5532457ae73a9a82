"""Lab protocols from the learning track (shared/context/learning-track.txt): each lab is the
practice paired with a module, an exact procedure, a recording sheet and observation prompts.

- L-001 "Unified-memory math on your Mac" (module 01, Foundations): the wired limit, the
  bandwidth, what fits.
- L-002 "Inference on M-series" (module 06): model sizes across quantizations, the 70B test
  case, quantization trade-offs, measured on a ladder of models/quants.

Steps marked `automated` are run by `forgeplanner lab run` (and the Benchmarks view) where the
machine allows it; `macos_only` steps need a Mac and are recorded as "manual" elsewhere, with
the exact command to run.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class LabStep:
    id: str
    title: str
    procedure: str  # what to do, exactly
    command: str = ""  # the command to type, when there is one
    automated: bool = False
    macos_only: bool = False


@dataclass(frozen=True, slots=True)
class SheetField:
    key: str
    label: str
    unit: str = ""
    step: str = ""  # the step that fills it


@dataclass(frozen=True, slots=True)
class LabProtocol:
    id: str
    title: str
    module: str
    goal: str
    steps: tuple[LabStep, ...]
    sheet: tuple[SheetField, ...]
    observations: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "module": self.module,
            "goal": self.goal,
            "steps": [
                {
                    "id": s.id,
                    "title": s.title,
                    "procedure": s.procedure,
                    "command": s.command,
                    "automated": s.automated,
                    "macos_only": s.macos_only,
                }
                for s in self.steps
            ],
            "sheet": [
                {"key": f.key, "label": f.label, "unit": f.unit, "step": f.step} for f in self.sheet
            ],
            "observations": list(self.observations),
        }


L001 = LabProtocol(
    id="L-001",
    title="Unified-memory math on your Mac",
    module="01 Foundations: pick the hardware",
    goal=(
        "Find out how much of your Mac's unified memory the GPU may use, how fast that memory "
        "really is, and which models fit, and compare each with what ForgePlanner predicts."
    ),
    steps=(
        LabStep(
            "machine",
            "Record the machine",
            "Write down the chip, GPU cores, unified memory and macOS version. ForgePlanner reads "
            "them with sysctl/ioreg on macOS and psutil elsewhere.",
            "sysctl -n machdep.cpu.brand_string hw.memsize; sw_vers -productVersion",
            automated=True,
        ),
        LabStep(
            "wired-limit",
            "Read the GPU wired-memory limit",
            "Read iogpu.wired_limit_mb (0 means the macOS default: about two thirds of memory up "
            "to 36 GB, three quarters above). Compute the GPU budget in GiB and compare it with "
            "ForgePlanner's budget for this machine.",
            "sysctl iogpu.wired_limit_mb",
            automated=True,
            macos_only=True,
        ),
        LabStep(
            "bandwidth",
            "Measure memory bandwidth",
            "Close other apps. Run the built-in benchmark (copy and triad on all cores, STREAM "
            "convention; a decode simulation that reads model-sized weights). Compare the copy "
            "bandwidth with the catalog's advertised figure: the ratio is your machine's "
            "achievable fraction.",
            "forgeplanner bench run builtin",
            automated=True,
        ),
        LabStep(
            "what-fits",
            "What fits: a ladder of models at 8K context",
            "For each model of the ladder at Q4_K_M and Q8_0 with an 8K context, note "
            "ForgePlanner's verdict (fits / fits with a raised limit / does not fit), the memory "
            "it needs and the headroom against the GPU budget.",
            "forgeplanner estimate --model llama-3.1-8b --quant Q4_K_M --host this",
            automated=True,
        ),
        LabStep(
            "raise-limit",
            "Optional: raise the wired limit and re-check",
            "If a model is 'fits-with-raised-limit', apply the sysctl command ForgePlanner "
            "prints (it resets at reboot), load the model, and record whether it loads and how "
            "much memory macOS keeps. Undo with `sudo sysctl iogpu.wired_limit_mb=0`.",
            "sudo sysctl iogpu.wired_limit_mb=<MB>",
            macos_only=True,
        ),
    ),
    sheet=(
        SheetField("chip", "Chip / CPU", step="machine"),
        SheetField("gpu_cores", "GPU cores", step="machine"),
        SheetField("memory_gib", "Unified memory", "GiB", "machine"),
        SheetField("os_version", "OS version", step="machine"),
        SheetField("wired_limit_mb", "iogpu.wired_limit_mb", "MB", "wired-limit"),
        SheetField("gpu_budget_gib", "GPU budget (ForgePlanner)", "GiB", "wired-limit"),
        SheetField("copy_gbps", "Copy bandwidth (measured)", "GB/s", "bandwidth"),
        SheetField("triad_gbps", "Triad bandwidth (measured)", "GB/s", "bandwidth"),
        SheetField("decode_sim_gbps", "Decode-simulation read bandwidth", "GB/s", "bandwidth"),
        SheetField("catalog_gbps", "Advertised bandwidth (catalog)", "GB/s", "bandwidth"),
        SheetField("bandwidth_ratio", "Measured copy / advertised", "", "bandwidth"),
        SheetField(
            "largest_fit_q4", "Largest ladder model that fits at Q4_K_M, 8K", step="what-fits"
        ),
        SheetField(
            "largest_fit_q8", "Largest ladder model that fits at Q8_0, 8K", step="what-fits"
        ),
    ),
    observations=(
        "How much of the unified memory may the GPU wire by default, and what is left for "
        "macOS and your apps?",
        "Measured vs advertised bandwidth: what fraction do you reach, and why is it below 100 %?",
        "Which is the largest model that fits at Q4_K_M with 8K context? How much headroom is "
        "left?",
        "Which model would fit only with a raised wired limit, and what would macOS keep then?",
        "Given decode reads every weight once per token: what decode speed does your bandwidth "
        "allow for the largest model that fits?",
    ),
)

LADDER_FIT: tuple[str, ...] = (
    "llama-3.2-3b", "llama-3.1-8b", "qwen2.5-14b", "qwen2.5-32b", "llama-3.1-70b",
)  # fmt: skip
SIZE_QUANTS: tuple[str, ...] = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
# Quantizations a synthetic GGUF can be written in (forgeplanner.bench.synthetic_gguf).
RUN_LADDER: tuple[tuple[str, str], ...] = (
    ("qwen2.5-0.5b", "F16"),
    ("qwen2.5-0.5b", "Q8_0"),
    ("qwen2.5-0.5b", "Q4_0"),
)

L002 = LabProtocol(
    id="L-002",
    title="Inference on M-series: model sizes across quantizations, the 70B test case, "
    "quantization trade-offs",
    module="06 Inference: Ollama and MLX on M-series",
    goal=(
        "See how a model's size changes with its quantization, whether the 70B test case fits "
        "on this machine, and what each quantization costs and gains in speed, measured."
    ),
    steps=(
        LabStep(
            "sizes",
            "Model sizes across quantizations",
            "For llama-3.1-8b and llama-3.1-70b, list the weight bytes of F16, Q8_0, Q6_K, "
            "Q5_K_M, Q4_K_M, Q3_K_M and Q2_K (llama.cpp's per-tensor quantization mix) and the "
            "effective bits per weight.",
            "forgeplanner estimate --model llama-3.1-70b --all-quants --host this",
            automated=True,
        ),
        LabStep(
            "70b",
            "The 70B test case",
            "For llama-3.1-70b at 8K context, note for each quantization whether it fits this "
            "machine's GPU budget, fits only with a raised wired limit, or does not fit, and the "
            "memory each needs.",
            "forgeplanner estimate --model llama-3.1-70b --all-quants --host this",
            automated=True,
        ),
        LabStep(
            "ladder",
            "Run a ladder of quantizations",
            "Benchmark the same model at several quantizations with llama-bench (prompt 512, "
            "generation 128, 5 repetitions; on a Mac use real GGUF files you have, e.g. "
            "`--gguf ~/models/llama-3.1-8b-Q4_K_M.gguf`). Here: random-weight files of the "
            "qwen2.5-0.5b shape, which have real sizes and speeds but no text quality. Record "
            "decode and prefill tokens/s with ForgePlanner's estimate and error.",
            "forgeplanner bench run llama.cpp --model qwen2.5-0.5b --quant Q4_0",
            automated=True,
        ),
        LabStep(
            "ollama-mlx",
            "Optional: the same model in Ollama and MLX",
            "On a Mac, run `forgeplanner bench run ollama --model llama3.1:8b` and mlx_lm's "
            "benchmark for the same model and compare runtimes at similar bits per weight.",
            "forgeplanner bench run ollama --model llama3.1:8b",
            macos_only=True,
        ),
    ),
    sheet=(
        SheetField("sizes_8b", "llama-3.1-8b weights per quant", "GiB", "sizes"),
        SheetField("sizes_70b", "llama-3.1-70b weights per quant", "GiB", "sizes"),
        SheetField("fit_70b", "70B verdict per quant at 8K", step="70b"),
        SheetField(
            "ladder",
            "Decode / prefill tokens/s per quant (measured, estimate, error)",
            "tok/s",
            "ladder",
        ),
    ),
    observations=(
        "How do the weight bytes scale with bits per weight, and why are the K-quant files "
        "larger than their nominal bits suggest?",
        "Which is the best quantization of the 70B model this machine can hold, and at what "
        "context?",
        "Decode speed vs bytes per token across the ladder: is decode memory-bound here "
        "(speed roughly inverse to size)? Where does it stop being so?",
        "Prefill vs decode: which one gains more from a smaller quantization, and why?",
        "Which quantization would you run daily on this machine, and what do you give up?",
    ),
)

LABS: dict[str, LabProtocol] = {p.id: p for p in (L001, L002)}


def get_lab(lab_id: str) -> LabProtocol:
    key = lab_id.strip().upper()
    if key not in LABS:
        raise NotFoundError("lab", lab_id, list(LABS))
    return LABS[key]
