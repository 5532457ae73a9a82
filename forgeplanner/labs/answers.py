"""Answers to a lab's manual steps, sheet fields, sign-off and observation prompts, from a TOML
file (`forgeplanner lab run L-00N --answers FILE.toml`) or the app. `lab show L-00N` lists the
keys; `template(lab)` writes a file to fill in.

    [steps.raise-limit]          # a manual step: done (true/false) and what happened
    done = true
    note = "raised to 147456 MB; llama-3.1-70b Q8_0 loaded"

    [sheet]                      # recording-sheet fields the person fills
    raised_limit_mb = 147456

    [signoff]                    # L-003: the human decision on the escalation
    who = "Ada Lovelace"
    why = "the second Studio is budgeted for the 70B work"

    [observations]               # one text per prompt, by key
    gpu-share = "..."

Anything else (an unknown table or key, a wrong type, an empty text) is refused with one line
naming the file, the key and the value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeplanner.errors import DataError
from forgeplanner.labs.protocols import LabProtocol

_TABLES = ("steps", "sheet", "signoff", "observations")


@dataclass(frozen=True, slots=True)
class LabAnswers:
    source: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {done, note}
    sheet: dict[str, Any] = field(default_factory=dict)
    signoff: dict[str, str] = field(default_factory=dict)  # who, why
    observations: dict[str, str] = field(default_factory=dict)

    def merged(self, newer: LabAnswers) -> LabAnswers:
        """These answers with `newer`'s on top (progress saved across sessions)."""
        steps = {k: dict(v) for k, v in self.steps.items()}
        for k, v in newer.steps.items():
            steps.setdefault(k, {}).update(v)
        return LabAnswers(
            source=newer.source,
            steps=steps,
            sheet={**self.sheet, **newer.sheet},
            signoff={**self.signoff, **newer.signoff},
            observations={**self.observations, **newer.observations},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "steps": self.steps,
            "sheet": self.sheet,
            "signoff": self.signoff,
            "observations": self.observations,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LabAnswers:
        d = d or {}
        return cls(
            source=str(d.get("source", "")),
            steps={k: dict(v) for k, v in (d.get("steps") or {}).items()},
            sheet=dict(d.get("sheet") or {}),
            signoff=dict(d.get("signoff") or {}),
            observations=dict(d.get("observations") or {}),
        )


def _text(source: str, key: str, value: Any) -> str:
    """A text answer; "" (as the template leaves it) means not answered yet."""
    if not isinstance(value, str):
        raise DataError(source, key, value, "must be a text")
    return value.strip()


def parse_answers(data: bytes, lab: LabProtocol, source: str) -> LabAnswers:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(source, "(bytes)", data[exc.start : exc.end], "not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(source, "(syntax)", "", f"not valid TOML: {exc}") from None
    manual_steps = {s.id for s in lab.manual_steps()}
    manual_sheet = {f.key for f in lab.sheet if f.manual}
    prompts = {o.key for o in lab.observations}
    out = LabAnswers(source=source)
    for table, body in raw.items():
        if table not in _TABLES or (table == "signoff" and not lab.signoff):
            valid = [t for t in _TABLES if t != "signoff" or lab.signoff]
            raise DataError(source, table, body, f"unknown table; valid: {', '.join(valid)}")
        if not isinstance(body, dict):
            raise DataError(source, table, body, "must be a [table]")
        for key, value in body.items():
            name = f"{table}.{key}"
            if table == "steps":
                if key not in manual_steps:
                    raise DataError(
                        source,
                        name,
                        value,
                        "not a manual step of "
                        + lab.id
                        + f"; valid: {', '.join(sorted(manual_steps)) or 'none'}",
                    )
                if not isinstance(value, dict):
                    raise DataError(source, name, value, "must be a table with done (and note)")
                for k in value:
                    if k not in ("done", "note"):
                        raise DataError(source, f"{name}.{k}", value[k], "valid: done, note")
                if not isinstance(value.get("done"), bool):
                    raise DataError(
                        source, f"{name}.done", value.get("done"), "must be true or false"
                    )
                step = {"done": value["done"]}
                note = _text(source, f"{name}.note", value.get("note", ""))
                if note:
                    step["note"] = note
                elif not value["done"]:
                    raise DataError(source, f"{name}.note", "", "say why the step was skipped")
                out.steps[key] = step
            elif table == "sheet":
                if key not in manual_sheet:
                    raise DataError(
                        source,
                        name,
                        value,
                        "not a field you fill; valid: "
                        + (", ".join(sorted(manual_sheet)) or "none"),
                    )
                if isinstance(value, dict | list):
                    raise DataError(source, name, value, "must be a number, text or boolean")
                out.sheet[key] = value
            elif table == "signoff":
                if key not in ("who", "why"):
                    raise DataError(source, name, value, "valid: who, why")
                if text := _text(source, name, value):
                    out.signoff[key] = text
            else:
                if key not in prompts:
                    valid = ", ".join(o.key for o in lab.observations)
                    raise DataError(source, name, value, f"no such prompt; valid: {valid}")
                if text := _text(source, name, value):
                    out.observations[key] = text
    if out.signoff and set(out.signoff) != {"who", "why"}:
        missing = ({"who", "why"} - set(out.signoff)).pop()
        raise DataError(source, f"signoff.{missing}", None, "a sign-off needs who and why")
    return out


def load_answers(path: str | Path, lab: LabProtocol) -> LabAnswers:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(str(path), "(file)", str(path), f"cannot read: {exc.strerror}") from None
    return parse_answers(data, lab, str(path))


def template(lab: LabProtocol) -> str:
    """An answers file with every key, commented, for the person to fill in."""
    lines = [
        f"# Answers for {lab.id} {lab.title}",
        f"# forgeplanner lab run {lab.id} --answers THIS_FILE.toml",
        "",
    ]
    for st in lab.manual_steps():
        lines += [f"[steps.{st.id}]  # {st.title}", "done = true", 'note = ""', ""]
    manual = [f for f in lab.sheet if f.manual]
    if manual:
        lines.append("[sheet]")
        for f in manual:
            unit = f" [{f.unit}]" if f.unit else ""
            lines.append(f'# {f.key} = ""  # {f.label}{unit}')
        lines.append("")
    if lab.signoff:
        lines += ["[signoff]", 'who = ""', 'why = ""', ""]
    lines.append("[observations]")
    for o in lab.observations:
        lines += [f"# {o.prompt}", f'{o.key} = ""']
    return "\n".join(lines) + "\n"
