#!/usr/bin/env python3
"""Fit and cross-validate the speed model: forgeplanner.calibration.speed_report."""

import sys

from forgeplanner.calibration.speed_report import main

if __name__ == "__main__":
    sys.exit(main())
