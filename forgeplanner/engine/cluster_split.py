"""Splitting a model's layers over the nodes of a pipeline. Pure integer/float arithmetic.

Two splits:

- `largest_remainder`: layers proportional to a weight per node (the GPU budget), rounded with
  the largest-remainder (Hamilton) method, so the counts sum exactly to the layer count and no
  node is more than one layer away from its exact quota.
- `fastest_contiguous_split`: the contiguous split (nodes keep their order, as llama.cpp's
  `--tensor-split` does) that minimises the per-token time through all stages, subject to every
  node's memory budget; ties go to the split whose slowest stage is fastest. Dynamic programming
  over (node, layers assigned so far), O(nodes x layers^2), exact for the sum; each node's step
  is one numpy pass over the [start, end] matrix of stages.

Both are hand-written: no well-kept library does apportionment with these constraints, and the
code is short enough to check by reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def largest_remainder(total: int, weights: Sequence[int]) -> tuple[int, ...]:
    """Split `total` units over `weights` proportionally (Hamilton / largest remainder).

    Integer arithmetic throughout, so the result is exact: counts sum to `total` and each count
    is the floor or the ceiling of its quota `total * w / sum(w)`. Ties in the remainders go to
    the earlier node.
    """
    if total < 0:
        raise ValueError(f"cannot split a negative number of layers ({total})")
    if not weights:
        raise ValueError("cannot split layers over zero nodes")
    if any(int(w) != w or w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative integers, got {list(weights)}")
    weight_sum = sum(int(w) for w in weights)
    if weight_sum == 0:
        raise ValueError(
            f"every node has a weight of 0 (weights {list(weights)}); nothing to split by"
        )
    floors = [total * int(w) // weight_sum for w in weights]
    remainders = [total * int(w) % weight_sum for w in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return tuple(floors)


def bounds(counts: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Counts per node -> [start, end) layer ranges in node order."""
    out: list[tuple[int, int]] = []
    start = 0
    for c in counts:
        out.append((start, start + c))
        start += c
    return tuple(out)


@dataclass(frozen=True, slots=True)
class StageCosts:
    """What the fastest split needs to know about one node.

    layer_seconds[l]: time per token this node spends on layer l (its speed for that layer).
    fixed_bytes: memory the node needs whatever layers it holds (compute buffer, runtime,
      embeddings/output head where they live on this node).
    budget_bytes: what the node may use (its GPU limit).
    overhead_s: time per token added when the node holds at least one layer (the network
      round trip to reach it); a node left with no layers costs nothing.
    """

    layer_seconds: tuple[float, ...]
    fixed_bytes: int
    budget_bytes: int
    overhead_s: float = 0.0  # per-token cost of having this stage at all (a network hop)


def fastest_contiguous_split(
    layer_bytes: Sequence[int], nodes: Sequence[StageCosts], min_layers: int = 1
) -> tuple[int, ...] | None:
    """Layer counts per node (node order kept) minimising total per-token time under memory.

    `layer_bytes[l]` is the memory layer l needs on whichever node holds it (weights + KV cache).
    Returns None when no split fits every budget.
    """
    n_layers = len(layer_bytes)
    n_nodes = len(nodes)
    if n_nodes == 0:
        raise ValueError("cannot split layers over zero nodes")
    if n_nodes * min_layers > n_layers:
        raise ValueError(
            f"{n_nodes} nodes need at least {n_nodes * min_layers} layers "
            f"({min_layers} each); the model has {n_layers}"
        )
    for node in nodes:
        if len(node.layer_seconds) != n_layers:
            raise ValueError(
                f"layer_seconds has {len(node.layer_seconds)} entries, expected {n_layers}"
            )
    # Prefix sums: int64 for bytes (exact), sequential float64 sums for seconds (np.cumsum adds
    # in order, as a running Python sum would).
    L = n_layers
    mem = np.concatenate(([0], np.cumsum(np.asarray(layer_bytes, dtype=np.int64))))
    idx = np.arange(L + 1)
    start_ix, end_ix = idx[:, None], idx[None, :]  # matrices indexed [start, end]
    span = end_ix - start_ix
    inf = np.inf
    # best_sum/best_max[k]: the nodes placed so far holding layers [0, k) (sum of stage times,
    # slowest stage); candidates are compared as (sum, max) tuples, ties to the earliest start
    best_sum = np.full(L + 1, inf)
    best_max = np.full(L + 1, inf)
    best_sum[0] = best_max[0] = 0.0
    choices: list[np.ndarray] = []
    for i, node in enumerate(nodes):
        remaining_nodes = n_nodes - i - 1
        tp = np.concatenate(([0.0], np.cumsum(np.asarray(node.layer_seconds, dtype=np.float64))))
        stage = tp[None, :] - tp[:, None]
        stage = np.where(span > 0, stage + node.overhead_s, stage)
        need = mem[None, :] - mem[:, None] + int(node.fixed_bytes)
        valid = (
            (span >= min_layers)
            & (start_ix >= min_layers * i)
            & (end_ix >= min_layers * (i + 1))
            & (end_ix <= L - remaining_nodes * min_layers)
            & (need <= node.budget_bytes)
            & np.isfinite(best_sum)[:, None]
        )
        cand_sum = np.where(valid, best_sum[:, None] + stage, inf)
        cand_max = np.where(valid, np.maximum(best_max[:, None], stage), inf)
        low = cand_sum.min(axis=0)
        # Equal sums are equal only up to rounding (the same layers summed from different
        # starts), so a tie is a relative 1e-9; exact comparison would let rounding noise pick
        # the split (identical nodes got 27/53 instead of 40/40).
        tie = cand_sum <= low[None, :] + 1e-9 * np.abs(low[None, :])
        new_max = np.where(tie, cand_max, inf).min(axis=0)
        first = np.argmax(tie & (cand_max == new_max[None, :]), axis=0)
        cols = np.arange(L + 1)
        new_sum = np.where(np.isfinite(low), cand_sum[first, cols], inf)
        choices.append(np.where(np.isfinite(low), first, -1))
        best_sum, best_max = new_sum, new_max
    best = [(float(a), float(b)) for a, b in zip(best_sum, best_max, strict=True)]
    if best[n_layers][0] == float("inf"):
        return None
    counts = [0] * n_nodes
    end = n_layers
    for i in range(n_nodes - 1, -1, -1):
        start = int(choices[i][end])
        counts[i] = end - start
        end = start
    return tuple(counts)
