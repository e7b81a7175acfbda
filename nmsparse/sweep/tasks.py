"""The work a sweep hands to Dask workers: generate, measure (one FPGA family), verify.

Every task takes and returns plain data (parameters, Verilog bytes, sidecar text, tool output
files), never paths on the client: a worker on another machine needs only the project
installed, no shared file system. The client keeps the cache and the results::

    client                               worker (any machine with nmsparse installed)
    ──────                               ──────
    (unit, params, name) ─────────────►  generate: Verilog + sidecar text
    cache hit? no: (verilog, sidecar) ─►  measure(family): tools in a private temp dir
    store the returned files in the  ◄──  {file name: bytes}, parsed figures or the error
    cache, exactly as `nmsparse report`

A tool that *fails* (exit code, bad output) is a result (``error``), recorded and never
retried: it would fail again. A tool that *times out* raises :class:`ToolTimeout`, so Dask's
``retries`` give it another chance (a loaded machine, a slow worker); a worker that dies mid
task is rescheduled by Dask itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["ToolTimeout", "generate", "measure", "verify", "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 8 << 20
"""Tool output files larger than this are not sent back (logs stay readable, memory bounded)."""


class ToolTimeout(RuntimeError):
    """A tool run did not finish within the point's timeout (retried by Dask)."""


def _scratch(prefix: str) -> Path:
    root = os.environ.get("NMSPARSE_SWEEP_SCRATCH") or None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def generate(unit: str, params: dict, name: str) -> dict:
    """Emit one point: ``{"verilog": bytes, "sidecar": str, "seconds": float}``."""
    from gen.emit import sidecar_text, verilog_text

    from .grid import build_config

    t0 = time.monotonic()
    config = build_config(unit, params)
    verilog = verilog_text(config, name).encode()
    return {"verilog": verilog, "sidecar": sidecar_text(config, name),
            "seconds": round(time.monotonic() - t0, 2)}


def _sidecar(work: Path, name: str, verilog: bytes, sidecar: str):
    from nmsparse.contract.sidecar import load_sidecar

    (work / f"{name}.v").write_bytes(verilog)
    (work / f"{name}.json").write_text(sidecar)
    return load_sidecar(work / f"{name}.json")


def measure(family: str, name: str, verilog: bytes, sidecar: str, *, place: bool,
            timeout: float | None) -> dict:
    """Measure one point for one family (``ecp5`` with the ASIC proxy, ``xilinx``, ``nexus``).

    Returns
    -------
    dict
        ``files`` (``{name: bytes}`` of the work directory, to store in the cache),
        ``measured`` (the parsed figures) and ``error`` (None, or why the tool failed),
        ``seconds`` and ``worker`` (host name).

    Raises
    ------
    ToolTimeout
        A tool did not finish in ``timeout`` seconds.
    """
    from nmsparse.report import families, synth

    t0 = time.monotonic()
    scratch = _scratch(f"nmsparse-{family}-")
    try:
        sc = _sidecar(scratch, name, verilog, sidecar)
        work = scratch / "work"
        try:
            if family == "ecp5":
                measured = synth.measure(sc.verilog, sc, work, place=place, timeout=timeout,
                                         source=verilog)
            else:
                measured = families.measure(family, sc.verilog, sc, work, place=place,
                                            timeout=timeout, source=verilog)
        except synth.SynthesisError as exc:
            # the log lives in this task's scratch directory, removed below: its tail is in
            # the message, the path would mislead
            text = str(exc).replace(str(scratch), f"<scratch on {os.uname().nodename}>")
            if exc.timeout is not None:
                raise ToolTimeout(text) from None
            return {"files": {}, "measured": None, "error": text,
                    "seconds": round(time.monotonic() - t0, 2), "worker": os.uname().nodename}
        files = {}
        for f in sorted(work.rglob("*")):
            if f.is_file() and f.stat().st_size <= MAX_FILE_BYTES:
                files[str(f.relative_to(work))] = f.read_bytes()
        return {"files": files, "measured": measured, "error": None,
                "seconds": round(time.monotonic() - t0, 2), "worker": os.uname().nodename}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verify(name: str, verilog: bytes, sidecar: str, *, seed: int, groups: int = 64) -> dict:
    """The regression of :func:`verif.vectors.regression_scenarios` on one point (Verilator):
    directed edge cases, random groups under idle and back-pressure patterns, a reset, and for
    int8/bf16 selectors the embedded SmolLM2 activations; every output bit against the golden
    model.

    Returns
    -------
    dict
        ``groups``, ``mismatches``, ``errors`` (protocol errors, first few), ``ok``,
        ``seconds``; or ``error`` when the simulation could not run.
    """
    from nmsparse.contract import toolchain
    from verif import runner, vectors

    t0 = time.monotonic()
    scratch = _scratch("nmsparse-verify-")
    try:
        sc = _sidecar(scratch, name, verilog, sidecar)
        acts = None
        if sc.unit == "topk" and sc.fmt in ("int8", "bf16"):
            acts = vectors.load_activations("default")
        scen = vectors.regression_scenarios(sc, seed, groups=groups, act_groups=4 * groups,
                                            activations=acts)
        try:
            # the project's simulator build cache: a point equal to a shipped module (same
            # Verilog) reuses the build the tests made
            res = runner.run_vectors(sc, scen, seed=seed, tag="sweep")
        except (runner.SimError, toolchain.ToolchainError) as exc:
            return {"error": str(exc), "ok": False, "seconds": round(time.monotonic() - t0, 2)}
        return {"groups": res.groups, "mismatches": res.mismatches, "errors": res.errors[:5],
                "ok": bool(res.passed), "seed": seed, "error": None,
                "seconds": round(time.monotonic() - t0, 2)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
