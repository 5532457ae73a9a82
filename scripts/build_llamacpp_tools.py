"""Build llama.cpp's llama-bench, ggml-rpc-server and llama-fit-params from the
llama-cpp-python sdist into ForgePlanner's tools cache (about 8 minutes on 2 cores, once).

Usage: python scripts/build_llamacpp_tools.py
"""

from __future__ import annotations

import sys

from forgeplanner.bench.llamacpp_tools import build_llamacpp_tools

if __name__ == "__main__":
    bin_dir = build_llamacpp_tools()
    print(bin_dir)
    sys.exit(0)
