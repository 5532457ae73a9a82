"""ForgePlanner: hardware planner and sizing calculator for Apple Silicon AI labs.

The package is the Qt-free core. `ui/` is the only package that imports Qt.
"""

__version__ = "0.1.0"
