"""`--node NAME=CONFIG_ID[:ROLE[+ROLE...]]`: a shelf node with the roles the user pins to it.

Configuration ids never contain ':' (catalog slugs), so the first ':' starts the roles. Whether
a pin can be honoured is the layout's decision (`engine.platform_layout`); this module only
reads the text and names what is wrong with it.
"""

from __future__ import annotations

import re

from forgeplanner.engine.platform_services import ROLES
from forgeplanner.errors import ForgePlannerError

_CLOCK = re.compile(r"(\d+(?:\.\d+)?)\s*GHz", re.IGNORECASE)


class PinError(ForgePlannerError):
    """A --node argument that cannot be read."""


def parse_node_arg(text: str) -> tuple[str, str, tuple[str, ...]]:
    name, sep, rest = text.partition("=")
    config_id, colon, roles_text = rest.partition(":")
    if not sep or not name.strip() or not config_id.strip():
        raise PinError(
            f"--node '{text}': expected NAME=CONFIG_ID[:ROLE[+ROLE...]] "
            "(e.g. mini-1=mac-mini-2018-i7-32gb or mini-1=mac-mini-2018-i7-32gb:control-plane)"
        )
    roles: list[str] = []
    if colon:
        for part in roles_text.split("+"):
            role = part.strip()
            if role not in ROLES:
                raise PinError(f"--node '{text}': role '{role}' unknown; valid: {', '.join(ROLES)}")
            if role not in roles:
                roles.append(role)
    return name.strip(), config_id.strip(), tuple(roles)


def cpu_clock_ghz(chip_name: str) -> float | None:
    """The base clock the catalog writes into an Intel chip's name ("Intel Core i7 3.2GHz
    6-core"); None for Apple Silicon names, which carry none."""
    m = _CLOCK.search(chip_name)
    return float(m.group(1)) if m else None
