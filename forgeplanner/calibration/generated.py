"""Writing generated Python modules (fitted constants) in the repository's own style."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def ruff_format(path: Path) -> None:
    """Format a generated module as the repository's style check expects. ruff is a test
    dependency; without it the file is still valid Python, only not reformatted."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if Path(ruff).exists():
        subprocess.run([ruff, "format", "-q", str(path)], check=False)
