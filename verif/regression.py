"""The regression of one module, shared by ``tests/test_verif_regression.py`` and
``nmsparse verify`` (one implementation, so the two never check different things).

::

    Sidecar ──regression_scenarios──> directed edge cases, random x (idle x back-pressure),
       │                              reset mid-stream, exact latency / full throughput,
       │                              real activations (MAC units: rows, wrap-around)
       v
    runner.run_vectors ──> one Verilator build (cached, dependency-checked) + one cocotb run
       v
    SimResult: per-scenario groups, mismatches, latencies, errors; .cause() in one line

The real-activation scenario uses the embedded SmolLM2-135M capture unless the caller passes
other activations (or none).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar, find_module, list_modules

from . import runner, vectors
from .sources import BuildSources

__all__ = ["default_activations", "select_modules", "run_module", "scenario_lines"]


@functools.cache
def default_activations():
    """The embedded SmolLM2 activations (None when the file is not installed)."""
    if not vectors.DEFAULT_ACTIVATIONS.is_file():
        return None
    return vectors.load_activations("default")


def select_modules(hdl_dir: str | os.PathLike, names: Sequence[str] = ()) -> list[Sidecar]:
    """The modules of ``hdl_dir`` (all, or those called ``names``).

    Raises
    ------
    FileNotFoundError
        The directory, or a named module, does not exist; or the directory has no sidecar.
    SidecarError
        A sidecar does not validate (never skipped).
    """
    d = Path(hdl_dir)
    if names:
        return [find_module(d, n) for n in names]
    mods = list_modules(d)
    if not mods:
        raise FileNotFoundError(f"no sidecar (<module>.json) in {d}: write one with "
                                "`nmsparse sidecar init TOP.v --unit topk --pattern N:M "
                                "--fmt FMT`")
    return mods


def run_module(sc: Sidecar, *, seed: int, slow: bool = False,
               activations: Mapping | None | str = "default",
               build_root: str | os.PathLike | None = None,
               sources: BuildSources | None = None, timeout: float | None = None,
               tag: str | None = None) -> runner.SimResult:
    """Build ``sc`` (once) and run its whole regression in one simulator run.

    Parameters
    ----------
    activations : mapping of tensors, None or "default"
        For the real-activation scenario; ``"default"`` = the embedded SmolLM2 capture,
        None = skip it.
    slow : bool
        Eight times as many groups.

    Raises
    ------
    verif.errors.SimError
        The build failed, the ports disagree with the sidecar, or the simulator hung or
        crashed (see :func:`verif.runner.run_vectors`).
    """
    acts = default_activations() if isinstance(activations, str) else activations
    scen = vectors.regression_scenarios(sc, seed, activations=acts, slow=slow)
    return runner.run_vectors(sc, scen, seed=seed, build_root=build_root,
                              tag=tag or ("slow" if slow else "regr"), sources=sources,
                              timeout=timeout)


def scenario_lines(res: runner.SimResult) -> list[str]:
    """One line per scenario: groups, mismatches, latency, speed, ok/FAIL."""
    out = []
    for rec in res.scenarios:
        lat = ",".join(map(str, rec.latencies)) or "-"
        out.append(f"{rec.name}: {rec.groups} groups, {rec.mismatches} mismatches, latency "
                   f"{lat}, {rec.groups_per_second:.0f} groups/s "
                   f"[{'ok' if rec.ok else 'FAIL'}]")
    return out
