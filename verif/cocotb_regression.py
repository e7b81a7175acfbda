"""The cocotb test that replays a vector file against one module (runs inside the simulator).

:mod:`verif.runner` writes the vector file (stimulus and expected outputs, both computed by the
golden model in the pytest or CLI process) and passes its path in ``NMSPARSE_VECTORS``; this
test streams every scenario through the design, checks every output bit, the exact latency and
full throughput where the scenario asks for it, and writes a JSON summary to
``NMSPARSE_RESULT``. It fails when any scenario found a mismatch or a protocol error.

The vector and result files are the typed schemas of :mod:`nmsparse.contract.vectors`.
Two more files travel beside them: ``NMSPARSE_FATAL`` receives ``{"message": ...}`` when the
design's ports do not match the sidecar (no scenario can run), and ``NMSPARSE_PROGRESS`` is
rewritten every 512 cycles with the current scenario and its last transfers, so the
runner can say where a simulation that hung stopped.

A phase with ``reset_after`` pulses ``rst`` right after its last input transfer; the outputs
it produced before must be a prefix of its expected outputs, and nothing in flight may appear
after the reset.
"""

from __future__ import annotations

import functools
import json
import os
import zlib

import cocotb

from nmsparse.contract.sidecar import load_sidecar
from nmsparse.contract.vectors import ResultFile, ScenarioResult, VectorFile

from .tb import Scoreboard, Testbench, pattern


@cocotb.test()
async def run_vectors(dut) -> None:
    """Replay every scenario of ``$NMSPARSE_VECTORS`` and check the outputs."""
    spec = VectorFile.read(os.environ["NMSPARSE_VECTORS"])
    sc = load_sidecar(spec.sidecar)
    try:
        tb = Testbench(dut, sc)
    except ValueError as exc:
        _write(os.environ.get("NMSPARSE_FATAL"), {"message": str(exc)})
        raise
    await tb.start()
    progress_file = os.environ.get("NMSPARSE_PROGRESS")
    results: list[ScenarioResult] = []
    failed = []
    for scen in spec.scenarios:
        name = scen.name
        board = Scoreboard(sc)
        sseed = spec.seed ^ zlib.crc32(name.encode())
        idle = pattern(scen.idle, sseed)
        bp = pattern(scen.backpressure, sseed + 1)
        rec = ScenarioResult(name=name)
        latencies: set[int] = set()
        stalls = 0
        for pi, ph in enumerate(scen.phases):
            inputs = [int(h, 16) for h in ph.inputs]
            items = [format(v, f"0{sc.i.width}b") for v in inputs]
            expected = [int(h, 16) for h in ph.expected]
            progress = functools.partial(_progress, progress_file, name, pi, len(scen.phases),
                                         len(items))
            progress(tb.cycle, [], [])
            res = await tb.run_phase(items, len(expected), idle=idle, bp=bp,
                                     reset_after=ph.reset_after, timeout=scen.timeout,
                                     progress=progress if progress_file else None, every=512)
            pname = name if len(scen.phases) == 1 else f"{name} [phase {pi + 1}]"
            if res.timed_out:
                board.errors.append(f"{pname}: "
                                    + res.stall_text(len(items), len(expected), scen.timeout))
            elif not res.input_done:
                board.errors.append(
                    f"{pname}: the design accepted only {len(res.in_cycles)} of {len(items)} "
                    f"input transfers (i__ready stuck low?)")
            board.compare(pname, inputs, expected, res.outputs, ph.out_src,
                          prefix=ph.reset_after or res.timed_out, segments=scen.segments)
            for k, c in enumerate(res.out_cycles):
                if k < len(ph.out_src) and ph.out_src[k] < len(res.in_cycles):
                    latencies.add(c - res.in_cycles[ph.out_src[k]])
            stalls += res.stall_cycles
            rec.groups += ph.groups
            rec.cycles += res.cycles
            rec.seconds += res.seconds
            rec.transfers += len(inputs)
        if scen.check_latency:
            if latencies and latencies != {sc.latency}:
                board.errors.append(
                    f"{name}: measured latency {sorted(latencies)} cycles, the sidecar says "
                    f"{sc.latency}")
            if stalls:
                board.errors.append(
                    f"{name}: i__ready was low on {stalls} cycle(s) although o__ready was always "
                    "high (not full throughput)")
        rec.mismatches, rec.checked = board.mismatches, board.checked
        rec.errors, rec.reports = board.errors, board.reports
        rec.latencies = sorted(latencies)
        results.append(rec)
        status = "ok" if rec.ok else "FAIL"
        dut._log.info(
            f"{name}: {rec.groups} groups, {board.checked} outputs checked, "
            f"{board.mismatches} mismatches, {rec.cycles} cycles, "
            f"{rec.groups_per_second:.0f} groups/s [{status}]")
        for text in board.errors + board.reports:
            dut._log.error(text)
        if status != "ok":
            failed.append(name)
    out = os.environ.get("NMSPARSE_RESULT")
    if out:
        ResultFile(module=sc.module, seed=spec.seed, scenarios=results).write(out)
    assert not failed, f"{sc.module}: failing scenarios (seed {spec.seed}): {', '.join(failed)}"


def _progress(path: str | None, scenario: str, phase: int, phases: int, inputs: int,
              cycle: int, ins: list[int], outs: list[int]) -> None:
    _write(path, {"scenario": scenario, "phase": phase, "phases": phases, "cycle": cycle,
                  "inputs": inputs, "accepted": len(ins), "outputs": len(outs),
                  "last_in": ins[-1] if ins else None, "last_out": outs[-1] if outs else None})


def _write(path: str | None, doc: dict) -> None:
    """Write ``doc`` as JSON atomically (readers never see half a file)."""
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
