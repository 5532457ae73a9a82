"""Lab protocols from the learning track (shared/context/learning-track.txt): each lab is the
practice paired with a module, an exact procedure, a recording sheet and observation prompts.

- L-001 "Unified-memory math on your Mac" (module 01, Foundations): the wired limit, the
  bandwidth, what fits.
- L-002 "Inference on M-series" (module 06): model sizes across quantizations, the 70B test
  case, quantization trade-offs, measured on a ladder of models/quants.
- L-003 "Governance at the boundary" (module 07): the pre-commit gate on a plan repository,
  three changes that give ALLOW, DENY and ESCALATE, a human sign-off, the gate's latency and
  the policy rendered for the cluster.

Steps marked `automated` are run by `forgeplanner lab run` (and the Benchmarks view) where the
machine allows it; manual steps (`automated=False`) are confirmed by the person doing the lab,
from an answers file (`lab run L-00N --answers FILE.toml`) or the app; `macos_only` steps need
a Mac for the full procedure. Every step's `command` is a command that runs as printed (a test
runs each one); what only a Mac can do is said in the procedure.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeplanner.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class LabCommand:
    """A further command of a step, with the exit code it is expected to end with (a commit
    the gate refuses ends with 1)."""

    text: str
    expect_exit: int = 0
    why: str = ""


@dataclass(frozen=True, slots=True)
class LabStep:
    id: str
    title: str
    procedure: str  # what to do, exactly
    command: str = ""  # the command to type, when there is one
    automated: bool = False
    macos_only: bool = False
    more: tuple[LabCommand, ...] = ()  # commands after `command`, in order

    @property
    def commands(self) -> tuple[LabCommand, ...]:
        first = (LabCommand(self.command),) if self.command else ()
        return first + self.more


@dataclass(frozen=True, slots=True)
class SheetField:
    key: str
    label: str
    unit: str = ""
    step: str = ""  # the step that fills it
    manual: bool = False  # filled by the person (answers file / app), not measured


@dataclass(frozen=True, slots=True)
class Observation:
    key: str  # the answers file's key under [observations]
    prompt: str


@dataclass(frozen=True, slots=True)
class LabProtocol:
    id: str
    title: str
    module: str
    goal: str
    steps: tuple[LabStep, ...]
    sheet: tuple[SheetField, ...]
    observations: tuple[Observation, ...]
    signoff: bool = False  # the lab asks a human sign-off (who, why) in [signoff]

    def manual_steps(self) -> list[LabStep]:
        """Steps the person confirms (done/note). The sign-off step is answered by
        [signoff] who/why instead: the lab carries it out with them."""
        return [s for s in self.steps if not s.automated and not (self.signoff and s.id
                                                                  == "signoff")]  # fmt: skip

    def answer_keys(self) -> list[dict[str, str]]:
        """What an answers file (TOML) may set, one entry per key, in the lab's order."""
        keys: list[dict[str, str]] = []
        for st in self.manual_steps():
            if True:
                keys.append(
                    {
                        "key": f"steps.{st.id}.done",
                        "type": "boolean",
                        "about": f"you did: {st.title}",
                    }
                )
                keys.append(
                    {
                        "key": f"steps.{st.id}.note",
                        "type": "text",
                        "about": "what happened (optional)",
                    }
                )
        for f in self.sheet:
            if f.manual:
                unit = f" [{f.unit}]" if f.unit else ""
                keys.append({"key": f"sheet.{f.key}", "type": "value", "about": f.label + unit})
        if self.signoff:
            keys.append({"key": "signoff.who", "type": "text", "about": "who signs off"})
            keys.append({"key": "signoff.why", "type": "text", "about": "why it is accepted"})
        for o in self.observations:
            keys.append({"key": f"observations.{o.key}", "type": "text", "about": o.prompt})
        return keys

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
                    "commands": [{"command": c.text, "expect_exit": c.expect_exit,
                                  "why": c.why} for c in s.commands],
                }
                for s in self.steps
            ],
            "sheet": [
                {"key": f.key, "label": f.label, "unit": f.unit, "step": f.step,
                 "manual": f.manual}
                for f in self.sheet
            ],
            "observations": [{"key": o.key, "prompt": o.prompt} for o in self.observations],
            "answer_keys": self.answer_keys(),
        }  # fmt: skip


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
            "them with sysctl/ioreg on macOS and psutil elsewhere (on a Mac, `sysctl -n "
            "machdep.cpu.brand_string hw.memsize` and `sw_vers -productVersion` show the same); "
            "the command prints the machine ForgePlanner plans for.",
            "forgeplanner estimate --model llama-3.2-3b --quant Q4_K_M --this-machine",
            automated=True,
        ),
        LabStep(
            "wired-limit",
            "Read the GPU wired-memory limit",
            "On a Mac, read `sysctl iogpu.wired_limit_mb` (0 means the macOS default: about two "
            "thirds of memory up to 36 GB, three quarters above). Compute the GPU budget in GiB "
            "and compare it with ForgePlanner's budget for this machine, which the command "
            "prints with its basis.",
            "forgeplanner estimate --model llama-3.1-70b --quant Q4_K_M --this-machine "
            "--context 8192",
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
            "forgeplanner estimate --model llama-3.1-8b --quant Q4_K_M --this-machine "
            "--context 8192",
            automated=True,
        ),
        LabStep(
            "raise-limit",
            "Optional: raise the wired limit and re-check",
            "If a model is 'fits-with-raised-limit', apply the `sudo sysctl "
            "iogpu.wired_limit_mb=N` command ForgePlanner prints (it resets at reboot), load "
            "the model, and record whether it loads and how much memory macOS keeps. Undo with "
            "`sudo sysctl iogpu.wired_limit_mb=0`. Confirm the step (or say why you skipped it) "
            "in the answers file.",
            "forgeplanner estimate --model llama-3.1-70b --quant Q8_0 --this-machine "
            "--context 8192",
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
        SheetField("raised_limit_mb", "Raised iogpu.wired_limit_mb", "MB", "raise-limit", True),
        SheetField("raised_model_loaded", "Model loaded with the raised limit", "",
                   "raise-limit", True),
        SheetField("macos_kept_gib", "Memory macOS kept", "GiB", "raise-limit", True),
    ),
    observations=(
        Observation("gpu-share", "How much of the unified memory may the GPU wire by default, "
                    "and what is left for macOS and your apps?"),
        Observation("bandwidth-fraction", "Measured vs advertised bandwidth: what fraction do "
                    "you reach, and why is it below 100 %?"),
        Observation("largest-fit", "Which is the largest model that fits at Q4_K_M with 8K "
                    "context? How much headroom is left?"),
        Observation("raised-limit", "Which model would fit only with a raised wired limit, and "
                    "what would macOS keep then?"),
        Observation("decode-bound", "Given decode reads every weight once per token: what "
                    "decode speed does your bandwidth allow for the largest model that fits?"),
    ),
)  # fmt: skip

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
            "forgeplanner estimate --model llama-3.1-70b --this-machine --context 8192",
            automated=True,
        ),
        LabStep(
            "70b",
            "The 70B test case",
            "For llama-3.1-70b at 8K context, note for each quantization whether it fits this "
            "machine's GPU budget, fits only with a raised wired limit, or does not fit, and the "
            "memory each needs.",
            "forgeplanner estimate --model llama-3.1-70b --this-machine --context 8192 --json",
            automated=True,
        ),
        LabStep(
            "ladder",
            "Run a ladder of quantizations",
            "Benchmark the same model at several quantizations with llama-bench (prompt 256, "
            "generation 64, 3 repetitions; on a Mac use real GGUF files you have, e.g. "
            "`--gguf ~/models/llama-3.1-8b-Q4_K_M.gguf`). Here: random-weight files of the "
            "qwen2.5-0.5b shape, which have real sizes and speeds but no text quality. Record "
            "decode and prefill tokens/s with ForgePlanner's estimate and error.",
            "forgeplanner bench run llama.cpp --model qwen2.5-0.5b --quant Q4_0 -p 256 -n 64 -r 3",
            automated=True,
        ),
        LabStep(
            "ollama-mlx",
            "Optional: the same model in Ollama and MLX",
            "On a Mac with Ollama serving (http://localhost:11434, or OLLAMA_HOST), run the "
            "command, then `forgeplanner bench run mlx --model "
            "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit` for the same model, and compare the "
            "runtimes at similar bits per weight. Confirm the step in the answers file with "
            "the run ids.",
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
        SheetField("ollama_decode_tps", "Ollama decode (llama3.1:8b)", "tok/s", "ollama-mlx",
                   True),
        SheetField("mlx_decode_tps", "MLX decode (8B, 4-bit)", "tok/s", "ollama-mlx", True),
    ),
    observations=(
        Observation("bytes-vs-bits", "How do the weight bytes scale with bits per weight, and "
                    "why are the K-quant files larger than their nominal bits suggest?"),
        Observation("best-70b", "Which is the best quantization of the 70B model this machine "
                    "can hold, and at what context?"),
        Observation("memory-bound", "Decode speed vs bytes per token across the ladder: is "
                    "decode memory-bound here (speed roughly inverse to size)? Where does it "
                    "stop being so?"),
        Observation("prefill-vs-decode", "Prefill vs decode: which one gains more from a "
                    "smaller quantization, and why?"),
        Observation("daily-driver", "Which quantization would you run daily on this machine, "
                    "and what do you give up?"),
    ),
)  # fmt: skip

# The governance lab works in a plan repository it creates (relative to the working
# directory the lab runs in; `lab run L-003 --workdir DIR`).
L003_REPO = "shelf-plans"
L003_GITOPS = "shelf-gitops"
_PLAN = f"{L003_REPO}/lab.fplan"
_POLICY = f"{L003_REPO}/policy.toml"

L003 = LabProtocol(
    id="L-003",
    title="Governance at the boundary: the pre-commit gate, ALLOW / DENY / ESCALATE, sign-off",
    module="07 Governance: the policy/enforcement split",
    goal=(
        "Put the gate where changes enter: a pre-commit hook on a plan repository. Make three "
        "changes that the policy ALLOWs, DENIEs and ESCALATEs, sign the escalation off as a "
        "human, measure what the gate costs a commit, and render the same policy for the "
        "cluster's API server."
    ),
    steps=(
        LabStep(
            "repo",
            "Create the plan repository",
            f"A git repository ({L003_REPO}) with a build plan (one Mac Studio M2 Max 64 GB at "
            "its $2,399 launch price, the lab's fixed price) and the lab's gate policy (budget "
            "ceiling $6,000 with review above $4,000; 4 GiB of GPU headroom per model), "
            "committed before any hook exists.",
            f"forgeplanner governance init {L003_REPO}",
            automated=True,
        ),
        LabStep(
            "hook",
            "Install the gate as the pre-commit hook",
            "Install the plain git hook (or, with the pre-commit framework, use ForgePlanner's "
            ".pre-commit-hooks.yaml, hook id forgeplanner-gate). From now on every commit of a "
            "plan is judged.",
            f"forgeplanner governance install-hook {L003_REPO} --policy policy.toml",
            automated=True,
        ),
        LabStep(
            "allow",
            "Change 1: a model that fits (ALLOW)",
            "Add llama-3.1-8b at Q4_K_M and commit: the gate ALLOWs it (about 42 GiB of GPU "
            "headroom) and the commit goes through.",
            f"forgeplanner plan add-model {_PLAN} llama-3.1-8b --quant Q4_K_M --no-db",
            automated=True,
            more=(LabCommand(f'git -C {L003_REPO} commit -am "Add llama-3.1-8b at Q4_K_M"'),),
        ),
        LabStep(
            "deny",
            "Change 2: a model that does not fit (DENY)",
            "Add llama-3.1-70b at Q8_0 and commit: it needs about 25 GiB more than the Studio's "
            "GPU limit, the gate DENIES it and git refuses the commit. Revert the file.",
            f"forgeplanner plan add-model {_PLAN} llama-3.1-70b --quant Q8_0 --no-db",
            automated=True,
            more=(
                LabCommand(f'git -C {L003_REPO} commit -am "Add llama-3.1-70b at Q8_0"', 1,
                           "the gate DENIES it: git refuses the commit"),
                LabCommand(f"git -C {L003_REPO} checkout -- lab.fplan"),
            ),
        ),
        LabStep(
            "escalate",
            "Change 3: a second Studio (ESCALATE)",
            "Add a second Mac Studio at the lab's fixed price (Apple's launch price, $2,399) and "
            "commit: $4,798 is above the review threshold, the gate ESCALATEs and git refuses "
            "the commit until a human signs it off.",
            f"forgeplanner plan add-machine {_PLAN} mac-studio-m2-max-30c-64gb "
            "--price-usd 2399 --price-date 2023-06-05 --no-db",
            automated=True,
            more=(
                LabCommand(f'git -C {L003_REPO} commit -am "A second Mac Studio"', 1,
                           "the gate ESCALATEs: git refuses the commit until a sign-off"),
            ),
        ),
        LabStep(
            "signoff",
            "Sign the escalation off and commit",
            "Decide as the lab's owner: sign off with your name and the reason (the sign-off is "
            "bound to this plan's exact bytes and this policy), then commit again: the hook "
            "accepts the signed-off ESCALATE. Give `signoff.who` and `signoff.why` in the "
            "answers file.",
            f"forgeplanner governance sign-off {_PLAN} --policy {_POLICY} --who NAME "
            "--why REASON",
            more=(
                LabCommand(f'git -C {L003_REPO} commit -am "A second Mac Studio (signed off)"'),
            ),
        ),
        LabStep(
            "latency",
            "Measure the gate's latency",
            "The gate in process (read, parse, recompute, evaluate; 50 runs) and as the hook "
            "runs it (a new forgeplanner process per commit; 5 runs): median and 95th "
            "percentile.",
            f"forgeplanner governance latency {_PLAN} --policy {_POLICY}",
            automated=True,
        ),
        LabStep(
            "cluster",
            "The policy in the cluster",
            "Render the shelf's GitOps repository with the gate policy: its components/policy "
            "holds ValidatingAdmissionPolicy objects (memory requests on inference nodes within "
            "the GPU budget, images from the lab's registry, required labels) that the API "
            "server enforces: Deny for DENY, Warn + Audit for ESCALATE.",
            "forgeplanner platform layout --node mini-1=mac-mini-2018-i7-32gb "
            "--node mini-2=mac-mini-2018-i5-16gb --node mini-3=mac-mini-2018-i7-16gb "
            f"--node studio=mac-studio-m2-max-30c-64gb --policy {_POLICY} "
            f"--gitops {L003_GITOPS}",
            automated=True,
        ),
    ),
    sheet=(
        SheetField("allow_outcome", "Change 1 verdict", step="allow"),
        SheetField("deny_outcome", "Change 2 verdict", step="deny"),
        SheetField("deny_reason", "Change 2 reason", step="deny"),
        SheetField("escalate_outcome", "Change 3 verdict", step="escalate"),
        SheetField("escalate_reason", "Change 3 reason", step="escalate"),
        SheetField("signed_off_by", "Signed off by", step="signoff"),
        SheetField("signed_off_at", "Signed off at (UTC)", step="signoff"),
        SheetField("commits", "Commits in the plan repository", step="signoff"),
        SheetField("gate_median_ms", "Gate latency in process, median", "ms", "latency"),
        SheetField("gate_p95_ms", "Gate latency in process, p95", "ms", "latency"),
        SheetField("hook_median_ms", "Hook latency per commit, median", "ms", "latency"),
        SheetField("admission_policies", "ValidatingAdmissionPolicies rendered", step="cluster"),
    ),
    observations=(
        Observation("where-policy-lives", "The policy file lives in the repository (and in "
                    "the cluster as admission policies); the hook only enforces it. What does "
                    "that split buy you when the policy changes?"),
        Observation("escalate-vs-deny", "Why is a change in the review band an ESCALATE and "
                    "not a DENY? What would you lose if the gate could only say yes or no?"),
        Observation("signoff-binding", "The sign-off is bound to the plan's and the policy's "
                    "bytes. What happens when someone edits the plan after the sign-off, and "
                    "why is that the right behaviour?"),
        Observation("latency-budget", "Is the hook's latency acceptable on every commit? "
                    "Where does the time go (the gate itself vs starting the program)?"),
        Observation("bypass", "`git commit --no-verify` skips the hook. Which control catches "
                    "what the hook missed, and where must it run?"),
    ),
    signoff=True,
)  # fmt: skip

LABS: dict[str, LabProtocol] = {p.id: p for p in (L001, L002, L003)}


def get_lab(lab_id: str) -> LabProtocol:
    key = lab_id.strip().upper()
    if key not in LABS:
        raise NotFoundError("lab", lab_id, list(LABS))
    return LABS[key]
