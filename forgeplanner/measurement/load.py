"""The machine's load during a benchmark run, and the rule that calls a run noisy.

A bandwidth run taken while other programs are busy measures the leftovers, not the machine
(on the 2-vCPU development machine: 5.9 GB/s under load against 21.8 GB/s quiet), and an
estimate built on it is off by as much. So every run samples the load with psutil while it
runs and stores it with the run (`measured["load"]`); runs judged noisy are left out of this
machine's bandwidth and compute (forgeplanner.measurement.host_runs) and out of its calibration.

What is sampled (once at the start, every `interval_s` while the run lasts, once at the end):
- CPU time of the whole machine (psutil.cpu_times, summed over CPUs) split into ours (this
  process and its descendants: the benchmark threads, llama-bench, the decode-simulation
  child), other processes', idle and the hypervisor's steal. Shares are of the machine's
  total CPU time over the run, so 0.5 on 2 CPUs is one busy CPU.
- the five processes outside our tree that used the most CPU over the run (name, pid);
- the 1-minute load average at the start and the end (information only, see below);
- available memory (lowest seen) and swap traffic (pages swapped in and out over the run).

The rule (`NoiseRule`, its thresholds stored with every verdict). A run is noisy when:
1. other processes used more than 10 % of the machine's CPU time on average: memory
   bandwidth is shared by every core, so a busy neighbour takes bandwidth even when it leaves
   a CPU free for us;
2. the hypervisor took more than 5 % (steal time, virtual machines only);
3. more than 64 MiB were swapped in or out: paging competes for the same memory;
4. a headline metric's repetitions varied by more than 15 % (median absolute deviation over
   the median): this catches contention the CPU counters cannot see (another program on the
   GPU, thermal throttling). Headline metrics: the built-in runner's bandwidth, matmul and
   decode-simulation figures, each llama-bench test.
The load average is recorded but not judged: it counts our own benchmark threads and decays
over a minute, so it still shows the previous run's load at the start of the next one.

Runs whose work happens outside our process tree (an Ollama server) are sampled but not
judged: their own work would count as "other processes". A user whose machine is never idle
can keep a loaded run with `--accept-load`: it stays flagged noisy, marked accepted, and is
used only when no quiet run exists (forgeplanner.measurement.host_runs).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from forgeplanner.domain.units import MiB

TOP_OTHERS = 5


@dataclass(frozen=True, slots=True)
class NoiseRule:
    """Thresholds above which a run is noisy (see the module docstring for why each)."""

    max_other_cpu_share: float = 0.10
    max_steal_share: float = 0.05
    max_swap_bytes: int = 64 * MiB
    max_spread_pct: float = 15.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RULE = NoiseRule()


@dataclass(frozen=True, slots=True)
class OtherProcess:
    name: str
    pid: int
    cpu_share: float  # of the machine's CPU time over the run


@dataclass(frozen=True, slots=True)
class LoadFigures:
    """What the sampler measured over one run."""

    duration_s: float
    samples: int
    cpu_count: int
    own_cpu_share: float
    other_cpu_share: float
    other_cpu_share_peak: float  # the busiest sampling interval
    steal_share: float
    idle_share: float
    loadavg_1m_start: float | None
    loadavg_1m_end: float | None
    memory_total_bytes: int
    memory_available_min_bytes: int
    swap_in_bytes: int
    swap_out_bytes: int
    swap_used_bytes: int
    busiest_others: tuple[OtherProcess, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["busiest_others"] = [asdict(p) for p in self.busiest_others]
        return d


# ------------------------------------------------------------------------------ the rule


def _pct(share: float) -> str:
    return f"{100 * share:.0f} %"


def judge(
    figures: LoadFigures, rule: NoiseRule = DEFAULT_RULE, spreads: Mapping[str, float] | None = None
) -> list[str]:
    """Why the run is noisy (empty: quiet). `spreads`: metric -> MAD % of its repetitions."""
    reasons = []
    if figures.other_cpu_share > rule.max_other_cpu_share:
        busiest = ", ".join(
            f"{p.name} (pid {p.pid}) {_pct(p.cpu_share)}" for p in figures.busiest_others[:3]
        )
        reasons.append(
            f"other processes used {_pct(figures.other_cpu_share)} of the CPU time "
            f"(limit {_pct(rule.max_other_cpu_share)})"
            + (f"; busiest: {busiest}" if busiest else "")
        )
    if figures.steal_share > rule.max_steal_share:
        reasons.append(
            f"the hypervisor took {_pct(figures.steal_share)} of the CPU time (steal; limit "
            f"{_pct(rule.max_steal_share)})"
        )
    swapped = figures.swap_in_bytes + figures.swap_out_bytes
    if swapped > rule.max_swap_bytes:
        reasons.append(
            f"{swapped / MiB:.0f} MiB were swapped in or out during the run "
            f"(limit {rule.max_swap_bytes / MiB:.0f} MiB)"
        )
    return reasons + judge_spreads(spreads, rule)


def judge_spreads(spreads: Mapping[str, float] | None, rule: NoiseRule = DEFAULT_RULE) -> list[str]:
    """The spread part of the rule alone (also for runs stored before load sampling)."""
    return [
        f"the repetitions of {metric} varied by {pct:.0f} % (median absolute deviation; "
        f"limit {rule.max_spread_pct:.0f} %)"
        for metric, pct in sorted((spreads or {}).items())
        if pct > rule.max_spread_pct
    ]


def spreads_of(measured: Mapping[str, Any]) -> dict[str, float]:
    """MAD % of the headline metrics' repetitions: the built-in runner's `spread` block,
    llama-bench's per-test samples."""
    out: dict[str, float] = {}
    for key, block in (measured.get("spread") or {}).items():
        if isinstance(block, Mapping) and isinstance(block.get("mad_pct"), (int, float)):
            out[key] = float(block["mad_pct"])
    for t in measured.get("tests") or []:
        samples = [s for s in t.get("samples_ts") or [] if isinstance(s, (int, float))]
        if len(samples) >= 2:
            med = statistics.median(samples)
            if med > 0:
                mad = statistics.median(abs(s - med) for s in samples)
                out[str(t.get("label") or t.get("test"))] = 100.0 * mad / med
    return out


def load_block(
    figures: LoadFigures,
    *,
    rule: NoiseRule = DEFAULT_RULE,
    spreads: Mapping[str, float] | None = None,
    judged: bool = True,
    not_judged_reason: str = "",
    accepted: bool = False,
) -> dict[str, Any]:
    """The JSON stored with the run as `measured["load"]`: the figures, the verdict, why, the
    rule it was judged by, and whether the user accepted a noisy run."""
    reasons = judge(figures, rule, spreads) if judged else []
    return {
        **figures.to_dict(),
        "judged": judged,
        "not_judged_reason": not_judged_reason,
        "noisy": bool(reasons),
        "reasons": reasons,
        "accepted": bool(accepted and reasons),
        "rule": rule.to_dict(),
    }


# ------------------------------------------------------------------------------ reading back

QUIET, NOISY, ACCEPTED, NOT_JUDGED, NOT_RECORDED = (
    "quiet", "noisy", "accepted", "not judged", "not recorded",
)  # fmt: skip


def verdict_of(measured: Mapping[str, Any] | None) -> str:
    """quiet | noisy | accepted (noisy, kept by the user) | not judged | not recorded
    (runs stored before load sampling existed)."""
    block = (measured or {}).get("load")
    if not isinstance(block, Mapping):
        return NOT_RECORDED
    if not block.get("judged", True):
        return NOT_JUDGED
    if not block.get("noisy"):
        return QUIET
    return ACCEPTED if block.get("accepted") else NOISY


def reasons_of(measured: Mapping[str, Any] | None) -> list[str]:
    block = (measured or {}).get("load")
    return list(block.get("reasons") or []) if isinstance(block, Mapping) else []


def load_summary(measured: Mapping[str, Any] | None) -> str:
    """One short cell for `bench list`: the verdict and the other processes' CPU share."""
    v = verdict_of(measured)
    block = (measured or {}).get("load")
    if not isinstance(block, Mapping):
        return "-"
    other = block.get("other_cpu_share")
    share = f"other CPU {_pct(other)}" if isinstance(other, (int, float)) else ""
    label = {NOISY: "NOISY", ACCEPTED: "noisy, accepted"}.get(v, v)
    return f"{label} ({share})" if share else label


# ------------------------------------------------------------------------------ the sampler


def _machine_cpu() -> dict[str, float]:
    """Machine-wide CPU seconds by kind. Linux counts guest time inside user/nice
    (proc(5), /proc/stat), so it is left out of the total, as psutil.cpu_percent does."""
    import psutil

    t = psutil.cpu_times()
    d = t._asdict()
    total = sum(d.values()) - d.get("guest", 0.0) - d.get("guest_nice", 0.0)
    idle = d.get("idle", 0.0) + d.get("iowait", 0.0)
    steal = d.get("steal", 0.0)
    return {"total": total, "idle": idle, "steal": steal, "busy": total - idle - steal}


def _tree_cpu(me) -> tuple[float, set[int]]:
    """CPU seconds of this process and its descendants (live ones, and through
    children_user/children_system the ones already waited for), and their pids."""
    import psutil

    pids = {me.pid}
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            ct = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        pids.add(child.pid)
        total += ct.user + ct.system + ct.children_user + ct.children_system
    return total, pids


def _process_cpu() -> dict[tuple[int, float], tuple[str, float]]:
    """(pid, create_time) -> (name, CPU seconds) of every process we may read."""
    import psutil

    out = {}
    for p in psutil.process_iter(["name", "cpu_times", "create_time"], ad_value=None):
        info = p.info
        ct = info.get("cpu_times")
        if ct is None or info.get("create_time") is None:
            continue
        out[(p.pid, float(info["create_time"]))] = (
            str(info.get("name") or "?"),
            ct.user + ct.system,
        )
    return out


def _swap() -> tuple[int, int, int]:
    import psutil

    try:
        s = psutil.swap_memory()
    except (OSError, RuntimeError):  # no swap accounting on this system
        return 0, 0, 0
    return int(s.sin), int(s.sout), int(s.used)


def _loadavg() -> float | None:
    import psutil

    try:
        return float(psutil.getloadavg()[0])
    except (OSError, AttributeError):
        return None


class LoadSampler:
    """Samples the load in a background thread between `start()` and `stop()`.

    One sample is a handful of /proc (or sysctl) reads; at one per second it costs far less
    than the 10 % a run may lose to others before it is called noisy."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> LoadSampler:
        import psutil

        self._me = psutil.Process(os.getpid())
        self._t0 = time.monotonic()
        self._cpu0 = _machine_cpu()
        self._own0, self._pids = _tree_cpu(self._me)
        self._procs0 = _process_cpu()
        self._swap0 = _swap()
        self._load0 = _loadavg()
        vm = psutil.virtual_memory()
        self._mem_total = int(vm.total)
        self._mem_min = int(vm.available)
        self._samples = 1
        self._peak = 0.0
        self._last = (self._cpu0, self._own0)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fp-load-sampler")
        self._thread.start()
        return self

    def _sample(self) -> None:
        import psutil

        cpu = _machine_cpu()
        own, pids = _tree_cpu(self._me)
        avail = int(psutil.virtual_memory().available)
        with self._lock:
            self._pids |= pids
            last_cpu, last_own = self._last
            total = cpu["total"] - last_cpu["total"]
            if total > 0:
                other = (cpu["busy"] - last_cpu["busy"]) - (own - last_own)
                self._peak = max(self._peak, min(1.0, max(0.0, other / total)))
            self._last = (cpu, own)
            self._mem_min = min(self._mem_min, avail)
            self._samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample()
            except Exception:  # a failed sample must not kill the benchmark
                continue

    def stop(self) -> LoadFigures:
        """Stop sampling and return the figures over the whole run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        duration = time.monotonic() - self._t0
        cpu1, own1 = self._last
        procs1 = _process_cpu()
        sin1, sout1, used1 = _swap()
        total = max(cpu1["total"] - self._cpu0["total"], 1e-9)
        own = max(0.0, own1 - self._own0)
        busy = cpu1["busy"] - self._cpu0["busy"]
        other = min(1.0, max(0.0, (busy - own) / total))
        others = []
        for key, (name, secs) in procs1.items():
            if key[0] in self._pids:
                continue
            before = self._procs0.get(key, (name, 0.0))[1]
            if secs - before > 0:
                others.append(OtherProcess(name, key[0], min(1.0, (secs - before) / total)))
        others.sort(key=lambda p: -p.cpu_share)
        return LoadFigures(
            duration_s=duration,
            samples=self._samples,
            cpu_count=int(os.cpu_count() or 1),
            own_cpu_share=min(1.0, own / total),
            other_cpu_share=other,
            other_cpu_share_peak=max(self._peak, other),
            steal_share=max(0.0, (cpu1["steal"] - self._cpu0["steal"]) / total),
            idle_share=max(0.0, (cpu1["idle"] - self._cpu0["idle"]) / total),
            loadavg_1m_start=self._load0,
            loadavg_1m_end=_loadavg(),
            memory_total_bytes=self._mem_total,
            memory_available_min_bytes=self._mem_min,
            swap_in_bytes=max(0, sin1 - self._swap0[0]),
            swap_out_bytes=max(0, sout1 - self._swap0[1]),
            swap_used_bytes=used1,
            busiest_others=tuple(others[:TOP_OTHERS]),
        )

    def close(self) -> None:
        """Stop without computing figures (the run failed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
