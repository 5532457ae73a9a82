"""Apple list prices of every chip x memory x storage configuration, dated.

A machine's `[machine.price]` table is its launch price list: named steps (the base
configuration, and the price of each upgrade over it). A configuration's price is the sum of
its steps; a storage option adds its storage step (none for the storage the base includes).
Later `[[machine.price_list]]` entries are Apple's later price lists, each from a date:

    [[machine.price_list]]
    date = "2026-06-25"
    label = "June 2026 price rise"
    src = ["digitalapplied-2026"]
    steps = { base = { value = 2499, src = ["digitalapplied-2026"], grade = "B" } }
    rescale = { value = 1.25, src = ["digitalapplied-2026"], note = "base $1,999 -> $2,499" }
    withdraw = [{ config = "mac-studio-m4-max-40c-128gb" }, { storage_gb = 256 }]
    relist = [{ storage_gb = 256 }]

`steps` change step prices from that date (the others carry over). `withdraw` takes
configurations (a configuration id, a storage size, or both) off sale from that date;
`relist` puts them back. `rescale` says Apple repriced the whole model but only the steps
named in `steps` are sourced: every configuration whose price needs a step not re-sourced is
estimated as its previous price x the ratio, and labelled so ("scaled"), until a later list
sources its steps. A machine's `discontinued` date takes everything off sale.

Each storage option gets its own history of `ListPrice` entries: launch first, then one per
date on which its status, price or basis changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from forgeplanner.domain.hardware import ListPrice, StorageOption
from forgeplanner.domain.provenance import Figure

GRADES = ("A", "B", "C", "L")  # Apple/launch quote; arithmetic on sourced totals; rule; low
STORAGE_KINDS = ("SSD", "HDD", "Fusion")


@dataclass(frozen=True, slots=True)
class Step:
    figure: Figure
    cites: tuple[str, ...]
    grade: str = ""


@dataclass(frozen=True, slots=True)
class StorageSpec:
    gb: int | None
    kind: str = "SSD"
    step: str | None = None  # None: included in the configuration's price

    def suffix(self) -> str:
        if self.gb is None:
            return "base-storage"
        size = f"{self.gb // 1000}tb" if self.gb >= 1000 and self.gb % 1000 == 0 else f"{self.gb}gb"
        return size if self.kind == "SSD" else f"{size}-{self.kind.lower()}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Which configurations a `withdraw` / `relist` entry names."""

    config: str | None
    storage_gb: int | None
    chip: str | None = None

    def matches(self, config_id: str, chip_id: str, storage_gb: int | None) -> bool:
        if self.config is not None and self.config != config_id:
            return False
        if self.chip is not None and self.chip != chip_id:
            return False
        return self.storage_gb is None or self.storage_gb == storage_gb


@dataclass(frozen=True, slots=True)
class PriceList:
    date: str
    label: str
    steps: dict[str, Step]
    withdraw: tuple[Selector, ...] = ()
    relist: tuple[Selector, ...] = ()
    rescale: Figure | None = None
    cites: tuple[str, ...] = ()


def _worst(grades: Sequence[str]) -> str:
    known = [g for g in grades if g in GRADES]
    if len(known) < len(grades) or not known:
        return ""
    return max(known, key=GRADES.index)


def price_of(path: Sequence[str], steps: dict[str, Step]) -> tuple[Figure, str]:
    """The sum of the named steps as a figure (the formula in `derived`), and the worst grade.
    One unknown step makes the price unknown with that step's reason."""
    chosen = [(k, steps[k]) for k in path]
    for key, step in chosen:
        if step.figure.value is None:
            return Figure.unknown(f"price step '{key}' unknown: {step.figure.reason}"), ""
    grade = _worst([s.grade for _, s in chosen])
    cites: list[str] = []
    for _, step in chosen:
        cites.extend(c for c in step.cites if c not in cites)
    if len(chosen) == 1:
        return chosen[0][1].figure, grade
    as_of = max((s.figure.as_of for _, s in chosen if s.figure.as_of), default=None)
    total = float(sum(float(s.figure.value) for _, s in chosen))  # type: ignore[arg-type]
    formula = " + ".join(f"{k} {s.figure.value:g}" for k, s in chosen) + f" = {total:g} USD"
    caveats = [f"{k}: {s.figure.reason}" for k, s in chosen if s.figure.reason]
    return (
        Figure(
            value=total,
            source="; ".join(cites),
            as_of=as_of,
            reason=" | ".join(caveats) or None,
            derived=formula,
        ),
        grade,
    )


def build_options(
    config_id: str,
    chip_id: str,
    path: Sequence[str],
    storage: Sequence[StorageSpec],
    *,
    launch_date: str,
    launch_steps: dict[str, Step],
    price_lists: Sequence[PriceList],
    discontinued: tuple[str, str] | None,
    withdrawn: str | None = None,
) -> tuple[StorageOption, ...]:
    """Every storage option of one configuration with its dated list prices.
    `discontinued` is (date, source text); `withdrawn` the date the configuration itself was
    taken off sale (a configuration-level shortcut for a `withdraw` entry)."""
    out = []
    for spec in storage:
        full = [*path, *([spec.step] if spec.step else [])]
        out.append(
            StorageOption(
                id=f"{config_id}-{spec.suffix()}",
                storage_gb=spec.gb,
                storage_kind=spec.kind,
                history=_history(
                    config_id,
                    chip_id,
                    spec.gb,
                    full,
                    launch_date,
                    launch_steps,
                    price_lists,
                    discontinued,
                    withdrawn,
                ),
            )
        )
    return tuple(out)


def _history(
    config_id: str,
    chip_id: str,
    storage_gb: int | None,
    path: Sequence[str],
    launch_date: str,
    launch_steps: dict[str, Step],
    price_lists: Sequence[PriceList],
    discontinued: tuple[str, str] | None,
    withdrawn: str | None,
) -> tuple[ListPrice, ...]:
    steps = dict(launch_steps)
    stale: set[str] = set()
    price, grade = price_of(path, steps)
    entries = [
        ListPrice(
            date=launch_date,
            status="sold",
            price=price,
            basis="list" if price.value is not None else "unknown",
            price_list="launch",
            grade=grade,
        )
    ]
    off = False
    last_sold = entries[0]
    events: list[tuple[str, Callable[[], ListPrice | None]]] = []

    def apply_list(pl: PriceList) -> ListPrice | None:
        nonlocal off, last_sold
        if pl.rescale is not None:
            stale.update(set(steps) - set(pl.steps))
        steps.update(pl.steps)
        stale.difference_update(pl.steps)
        if any(sel.matches(config_id, chip_id, storage_gb) for sel in pl.withdraw):
            off = True
        if any(sel.matches(config_id, chip_id, storage_gb) for sel in pl.relist):
            off = False
        if off:
            return ListPrice(
                date=pl.date,
                status="not-offered",
                price=Figure.unknown(f"not offered by Apple from {pl.date} ({pl.label})"),
                basis="unknown",
                price_list=pl.label,
            )
        if not stale.intersection(path):
            fig, grade = price_of(path, steps)
            entry = ListPrice(
                date=pl.date,
                status="sold",
                price=fig,
                basis="list" if fig.value is not None else "unknown",
                price_list=pl.label,
                grade=grade,
            )
        else:
            entry = _scaled(pl, last_sold, path, stale)
        last_sold = entry
        return entry

    for pl in sorted(price_lists, key=lambda p: p.date):
        events.append((pl.date, lambda pl=pl: apply_list(pl)))
    if withdrawn is not None:

        def take_off(date: str = withdrawn) -> ListPrice:
            nonlocal off
            off = True
            return ListPrice(
                date=date,
                status="not-offered",
                price=Figure.unknown(f"configuration withdrawn by Apple {date}"),
                basis="unknown",
                price_list=f"withdrawn {date}",
            )

        events.append((withdrawn, take_off))
    if discontinued is not None:
        date, cite = discontinued

        def end(date: str = date, cite: str = cite) -> ListPrice:
            nonlocal off
            off = True
            return ListPrice(
                date=date,
                status="not-offered",
                price=Figure.unknown(f"model discontinued by Apple {date} ({cite})"),
                basis="unknown",
                price_list=f"discontinued {date}",
            )

        events.append((date, end))
    for _date, fn in sorted(events, key=lambda e: e[0]):
        entry = fn()
        if entry is None:
            continue
        prev = entries[-1]
        if (entry.status, entry.price.value, entry.basis) == (
            prev.status,
            prev.price.value,
            prev.basis,
        ) and entry.status == "not-offered":
            continue
        if (
            entry.status == prev.status == "sold"
            and entry.price.value == prev.price.value
            and entry.basis == prev.basis
        ):
            continue
        entries.append(entry)
    return tuple(entries)


def _scaled(pl: PriceList, last: ListPrice, path: Sequence[str], stale: set[str]) -> ListPrice:
    ratio = pl.rescale
    missing = ", ".join(sorted(stale.intersection(path)))
    if ratio is None:  # a later plain list after a rescale: the scaled price carries over
        return ListPrice(
            date=pl.date,
            status="sold",
            price=last.price,
            basis=last.basis,
            price_list=pl.label,
            grade=last.grade,
        )
    if last.price.value is None or ratio.value is None:
        return ListPrice(
            date=pl.date,
            status="sold",
            price=Figure.unknown(
                f"Apple repriced this model on {pl.date} ({pl.label}); the new price of "
                f"step(s) {missing} is unsourced and the previous price is unknown"
            ),
            basis="unknown",
            price_list=pl.label,
        )
    value = round(float(last.price.value) * float(ratio.value), 2)
    return ListPrice(
        date=pl.date,
        status="sold",
        price=Figure(
            value=value,
            source=ratio.source,
            as_of=pl.date,
            reason=(
                f"estimate: Apple repriced this model on {pl.date} ({pl.label}) and the new "
                f"price of step(s) {missing} is unsourced"
                + (f"; {ratio.reason}" if ratio.reason else "")
            ),
            derived=(
                f"previous list price {float(last.price.value):g} x {float(ratio.value):g} "
                f"(the sourced rise of the repriced configuration) = {value:g} USD"
            ),
        ),
        basis="scaled",
        price_list=pl.label,
        grade=last.grade,
    )


def parse_storage(error: Callable[[str, Any, str], Exception], where: str, raw: Any):
    """`[{gb = 512}, {gb = 1000, step = "ssd-1tb"}, {gb = 1000, kind = "Fusion", step = ..},
    {unknown = "reason"}]` -> StorageSpec list."""
    if not isinstance(raw, list) or not raw:
        raise error(where, raw, "expected a non-empty list of {gb, step?, kind?}")
    out: list[StorageSpec] = []
    for k, item in enumerate(raw):
        w = f"{where}[{k}]"
        if not isinstance(item, dict):
            raise error(w, item, "expected {gb, step?, kind?}")
        extra = set(item) - {"gb", "step", "kind", "unknown"}
        if extra:
            raise error(f"{w}.{sorted(extra)[0]}", item, "unexpected field (typo?)")
        if "unknown" in item:
            if "gb" in item:
                raise error(w, item, "give gb or unknown, not both")
            out.append(StorageSpec(None, "SSD", item.get("step")))
            continue
        gb = item.get("gb")
        if isinstance(gb, bool) or not isinstance(gb, int) or not 64 <= gb <= 16_000:
            raise error(f"{w}.gb", gb, "expected a storage size in GB (64..16000)")
        kind = item.get("kind", "SSD")
        if kind not in STORAGE_KINDS:
            raise error(f"{w}.kind", kind, f"expected one of {STORAGE_KINDS}")
        step = item.get("step")
        if step is not None and not isinstance(step, str):
            raise error(f"{w}.step", step, "expected a price step name")
        out.append(StorageSpec(gb, kind, step))
    seen = set()
    for s in out:
        if s.suffix() in seen:
            raise error(where, s.suffix(), "duplicate storage option")
        seen.add(s.suffix())
    return out
