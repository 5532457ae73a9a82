#!/usr/bin/env python3
"""Measure and fit llama.cpp's CPU-backend decode constants: calibration.cpu_backend."""

import sys

from forgeplanner.calibration.cpu_backend import main

if __name__ == "__main__":
    sys.exit(main())
