"""Lab protocols (L-001, L-002, L-003) from the learning track, run as guided sessions that produce
lab records stored in the user database (see forgeplanner.labs.protocols / .runner)."""

from forgeplanner.labs.protocols import (
    LABS,
    LabProtocol,
    LabStep,
    Observation,
    SheetField,
    get_lab,
)

__all__ = ["LABS", "LabProtocol", "LabStep", "Observation", "SheetField", "get_lab"]
