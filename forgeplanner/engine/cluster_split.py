"""Splitting a model's layers over the nodes of a pipeline. Pure integer/float arithmetic.

Two splits:

- `largest_remainder`: layers proportional to a weight per node (the GPU budget), rounded with
  the largest-remainder (Hamilton) method, so the counts sum exactly to the layer count and no
  node is more than one layer away from its exact quota.
- `fastest_contiguous_split`: the contiguous split (nodes keep their order, as llama.cpp's
  `--tensor-split` does) that minimises the per-token time through all stages, subject to every
  node's memory budget; ties go to the split whose slowest stage is fastest. Dynamic programming
  over (node, layers assigned so far), O(nodes x layers^2), exact for the sum.

Both are hand-written: no well-kept library does apportionment with these constraints, and the
code is short enough to check by reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
    mem_prefix = [0]
    for b in layer_bytes:
        mem_prefix.append(mem_prefix[-1] + int(b))
    time_prefix: list[list[float]] = []
    for node in nodes:
        p = [0.0]
        for s in node.layer_seconds:
            p.append(p[-1] + s)
        time_prefix.append(p)

    inf = (float("inf"), float("inf"))
    # best[k] = (sum, max) for the nodes placed so far holding layers [0, k); choice for backtrack
    best: list[tuple[float, float]] = [inf] * (n_layers + 1)
    best[0] = (0.0, 0.0)
    choices: list[list[int]] = []
    for i, node in enumerate(nodes):
        new = [inf] * (n_layers + 1)
        choice = [-1] * (n_layers + 1)
        remaining_nodes = n_nodes - i - 1
        for end in range(min_layers * (i + 1), n_layers - remaining_nodes * min_layers + 1):
            for start in range(min_layers * i, end - min_layers + 1):
                prev = best[start]
                if prev[0] == float("inf"):
                    continue
                need = mem_prefix[end] - mem_prefix[start] + node.fixed_bytes
                if need > node.budget_bytes:
                    continue
                stage = time_prefix[i][end] - time_prefix[i][start]
                if end > start:
                    stage += node.overhead_s
                cand = (prev[0] + stage, max(prev[1], stage))
                if cand < new[end]:
                    new[end] = cand
                    choice[end] = start
        best = new
        choices.append(choice)
    if best[n_layers][0] == float("inf"):
        return None
    counts = [0] * n_nodes
    end = n_layers
    for i in range(n_nodes - 1, -1, -1):
        start = choices[i][end]
        counts[i] = end - start
        end = start
    return tuple(counts)
