"""Shared pytest set-up: the toolchain environment and reproducible seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmsparse.contract import seeds, toolchain

toolchain.setup(verilator=False)


def seed() -> int:
    """The run's seed: ``NMSPARSE_SEED`` or the project default, printed in the header."""
    return seeds.seed()


def pytest_report_header(config):
    return f"nmsparse seed: NMSPARSE_SEED={seed()}"


@pytest.fixture
def nm_seed() -> int:
    return seed()


SMALL_MODULE = "nm_topk_2_4_int8_rank"


@pytest.fixture
def small_hdl(tmp_path_factory) -> Path:
    """A directory holding one freshly emitted small selector (2:4 int8 rank, one register
    stage) and its manifest: what the report tests measure and render."""
    from gen.config import TopKConfig
    from gen.emit import emit
    from nmsparse.contract.sidecar import manifest_text

    d = tmp_path_factory.mktemp("hdl")
    cfg = TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=1)
    assert cfg.name == SMALL_MODULE
    emit(cfg, d)
    (d / "manifest.json").write_text(manifest_text([cfg.name]))
    return d
