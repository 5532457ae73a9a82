"""Shared helpers for the cluster tests: real models from the model database, hosts from the
catalog when it loads (the same path the CLI takes)."""

from __future__ import annotations

import pytest

from forgeplanner.domain.estimates import RunOptions


@pytest.fixture(scope="session")
def models():
    from models_db.loader import load_models

    return load_models()


@pytest.fixture(scope="session")
def llama70b(models):
    return models.get("llama-3.1-70b")


@pytest.fixture(scope="session")
def opts8k():
    return RunOptions(context=8192)
