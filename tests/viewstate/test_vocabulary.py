"""One vocabulary: machine names, verdict words, metric labels with units, token counts."""

from __future__ import annotations

import catalog
from forgeplanner.viewstate.vocabulary import (
    machine_choices,
    machine_name_of,
    metric_label,
    tokens,
    verdict_word,
)


def test_machine_names():
    cat = catalog.load_catalog()
    assert (
        machine_name_of(cat, "mac-mini-m4-pro-20c-64gb")
        == "Mac mini (2024) - M4 Pro, 20-core GPU, 64 GB"
    )
    assert (
        machine_name_of(cat, "mac-mini-2018-i7-32gb")
        == "Mac mini (2018), Core i7 3.2GHz 6-core, 32 GB"
    )
    assert machine_name_of(cat, "not-in-catalog") == "not-in-catalog"
    names = [n for n, _ in machine_choices(cat)]
    assert len(names) == len(cat.configs) and len(set(names)) == len(names)


def test_words():
    assert verdict_word("fits-with-raised-limit") == "Fits with a raised GPU limit"
    assert verdict_word("does-not-fit", short=True) == "Does not fit"
    assert metric_label("copy_gbps") == "Memory copy bandwidth (GB/s)"
    assert metric_label("matmul_gflops") == "Matrix-multiply compute (GFLOP/s)"
    assert metric_label("some_new_metric") == "Some new metric"
    assert (tokens(16384), tokens(131072), tokens(5000)) == ("16K", "128K", "5,000")
