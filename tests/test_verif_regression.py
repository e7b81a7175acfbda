"""The cocotb regression through Verilator: every module of ``hdl/`` (or ``$NMSPARSE_HDL_DIR``).

One pytest test per module builds it once (``~/.cache/nmsparse/sim_build/<module>-<hash>``,
shared safely by ``pytest -n`` workers) and replays the whole regression of
:func:`verif.regression.run_module` in one simulator run: directed edge cases, random groups
under every idle x back-pressure pattern, reset mid-stream, exact latency and full
throughput, MAC rows with ``last`` and accumulator wrap-around, and real SmolLM2 activations.
``nmsparse verify`` runs the same function. The ``slow`` variant runs eight times as many
groups.
"""

from __future__ import annotations

import pytest
from conftest import seed

from nmsparse.contract import sidecar
from verif import regression, runner


def _modules() -> list[str]:
    d = runner.hdl_dir()
    try:
        return [sc.module for sc in sidecar.list_modules(d)]
    except FileNotFoundError:
        return []


MODULES = _modules()


def _run(name: str, *, slow: bool) -> runner.SimResult:
    sc = sidecar.find_module(runner.hdl_dir(), name)
    s = seed()
    res = regression.run_module(sc, seed=s, slow=slow)
    for line in regression.scenario_lines(res):
        print(f"{name}: {line}")
    print(f"{name}: seed {s}, build {res.build_seconds:.1f} s, simulation {res.sim_seconds:.1f} s")
    return res


def test_hdl_dir_has_modules():
    d = runner.hdl_dir()
    assert MODULES, f"no modules found in {d} (run `make hdl`, or set NMSPARSE_HDL_DIR)"


@pytest.mark.parametrize("name", MODULES)
def test_module(name: str):
    res = _run(name, slow=False)
    assert res.passed, res.failure_text()
    assert res.groups > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_module_slow(name: str):
    res = _run(name, slow=True)
    assert res.passed, res.failure_text()


def _sweep_names() -> list[str]:
    from gen.config import SWEEP

    return [c.name for c in SWEEP]


@pytest.mark.slow
@pytest.mark.parametrize("name", _sweep_names())
def test_sweep_module(name: str, tmp_path_factory):
    """Every point of the engine sweep (``hdl/engine_sweep``, K up to 32, weights in the stream and
    from memory) through the same regression, emitted afresh from ``gen.config.SWEEP``."""
    from gen.config import SWEEP
    from gen.emit import emit

    (cfg,) = [c for c in SWEEP if c.name == name]
    d = tmp_path_factory.mktemp("sweep")
    emit(cfg, d)
    sc = sidecar.load_sidecar(d / f"{name}.json")
    res = regression.run_module(sc, seed=seed(), tag="sweep")
    assert res.passed, res.failure_text()


def test_skid_sweep_module(tmp_path_factory):
    """One engine-sweep point with the output skid buffer (DESIGN.md 3) through the regression
    in the default run (every sweep point runs in the slow set)."""
    test_sweep_module("nm_linear_2_4_int8_k8_wlane_skid", tmp_path_factory)
