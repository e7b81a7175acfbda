"""Shared pytest set-up: the toolchain environment and reproducible seeds."""

from __future__ import annotations

import os

import pytest

from nmsparse import toolchain

toolchain.setup(verilator=False)


def seed() -> int:
    """The run's seed: ``NMSPARSE_SEED`` or a fixed default, printed in the header."""
    return int(os.environ.get("NMSPARSE_SEED", "20260922"))


def pytest_report_header(config):
    return f"nmsparse seed: NMSPARSE_SEED={seed()}"


@pytest.fixture
def nm_seed() -> int:
    return seed()
